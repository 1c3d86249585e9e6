//! The configuration file: a TOML table whose keys are `scheduler run`'s flags without the
//! dashes (`listen = "0.0.0.0:2601"`, `node-idle-timeout = 300`).
//!
//! It is a layer under the command line and the environment, over the defaults: a value
//! from the file is used only where neither a flag nor its environment variable gave one.
//! The defaults stay where they are written once, on the flags themselves; the file only
//! adds flags to the command line clap parses, so every value is checked by the same code
//! whatever layer it came from.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};

/// The file's name in the data directory, read when `--config` is not given.
pub const DEFAULT_FILE: &str = "scheduler.toml";

/// The environment variable that names the file, like `--config`.
pub const CONFIG_ENV: &str = "SKYLIGHT_CONFIG";

/// Where a setting's value came from, highest precedence first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A flag.
    CommandLine,
    /// The named environment variable.
    Environment(String),
    /// The configuration file.
    File,
    /// The flag's default.
    Default,
    /// Nothing: the setting is unset (its consumer's own default applies).
    Unset,
}

/// One setting of the subcommand, as it will be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Its key (the flag's long name).
    pub key: String,
    /// Its values as typed (several for a list, none when unset).
    pub values: Vec<String>,
    /// Where they came from.
    pub source: Source,
    /// What kind of value it takes.
    pub kind: Kind,
}

/// What kind of value a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// On or off (a flag without a value).
    Switch,
    /// Any number of values.
    List,
    /// One value.
    One,
}

/// The command line parsed with the configuration file under it.
pub struct Layered<P> {
    /// What clap made of it all.
    pub parsed: P,
    /// The file read, if there was one.
    pub file: Option<PathBuf>,
    /// Every setting of the subcommand that reads the file, in the order of its flags;
    /// empty for other subcommands.
    pub settings: Vec<Setting>,
}

impl<P> Layered<P> {
    /// Where `key`'s value came from.
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| &s.source)
    }
}

/// What went wrong reading the file, or clap's own error (help and `--version` included).
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Clap's: print it and exit with its code (`clap::Error::exit`).
    #[error(transparent)]
    Clap(#[from] clap::Error),
    /// The file: unreadable, not TOML, an unknown key or a value of the wrong kind.
    #[error("{0}")]
    File(String),
}

/// Parses `argv` as `P`; when the subcommand given is one of `layered` (each a path of
/// subcommand names), the configuration file's settings fill in what neither a flag nor
/// the environment set.
pub fn parse<P: CommandFactory + FromArgMatches>(
    argv: Vec<OsString>,
    layered: &[&[&str]],
) -> Result<Layered<P>, LayerError> {
    let top = P::command();
    let matches = top.clone().try_get_matches_from(&argv)?;
    let Some((path, sub)) = layered
        .iter()
        .find_map(|path| descend(&matches, path).map(|m| (*path, m)))
    else {
        return Ok(Layered {
            parsed: P::from_arg_matches(&matches)?,
            file: None,
            settings: Vec::new(),
        });
    };
    let args = arguments(&top, path);

    let explicit = sub.get_one::<PathBuf>("config").cloned();
    let file = match &explicit {
        Some(path) => Some(path.clone()),
        None => sub
            .get_one::<PathBuf>("data_dir")
            .map(|dir| dir.join(DEFAULT_FILE))
            .filter(|p| p.exists()),
    };
    let table = match &file {
        Some(path) => read(path)?,
        None => toml::Table::new(),
    };
    // How errors name the file (a key can only come from one).
    let shown = file
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();

    let mut extra: Vec<OsString> = Vec::new();
    let mut from_file = Vec::new();
    for (key, value) in &table {
        let Some(arg) = args.iter().find(|a| a.get_long() == Some(key.as_str())) else {
            return Err(LayerError::File(unknown_key(key, &shown, &args)));
        };
        if key == "data-dir" && explicit.is_none() {
            return Err(LayerError::File(format!(
                "{shown}: data-dir cannot be set in the data directory's own file; give it \
                 with --data-dir or SKYLIGHT_DATA_DIR, or name a file elsewhere with --config"
            )));
        }
        if set_above_the_file(&matches, sub, arg) {
            continue;
        }
        let flag = format!("--{key}");
        let bad = |what: &str| {
            LayerError::File(format!(
                "{shown}: {key} must be {what} (it is `{flag}` of `scheduler run --help`)"
            ))
        };
        match arg.get_action() {
            ArgAction::SetTrue => match value {
                toml::Value::Boolean(true) => extra.push(flag.into()),
                toml::Value::Boolean(false) => {}
                _ => return Err(bad("true or false")),
            },
            ArgAction::Append => {
                let items = match value {
                    toml::Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                for item in items {
                    let text = scalar(item).ok_or_else(|| bad("a list of strings"))?;
                    extra.push(format!("{flag}={text}").into());
                }
            }
            _ => {
                let text = scalar(value).ok_or_else(|| bad("a string, a number or a boolean"))?;
                extra.push(format!("{flag}={text}").into());
            }
        }
        from_file.push(arg.get_id().clone());
    }

    let mut full = argv;
    full.extend(extra);
    let matches = match top.try_get_matches_from(&full) {
        Ok(m) => m,
        // A value from the file clap refuses: say which file it is in.
        Err(e) if !from_file.is_empty() => {
            return Err(LayerError::File(format!(
                "{shown}: {}",
                e.render().to_string().trim()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let sub = descend(&matches, path).expect("the same subcommand");
    let settings = args
        .iter()
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version" | "config"))
        .filter_map(|a| {
            let key = a.get_long()?.to_string();
            let id = a.get_id().as_str();
            let values: Vec<String> = sub
                .get_raw(id)
                .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            let source = if from_file.iter().any(|f| f == a.get_id()) {
                Source::File
            } else {
                match sub.value_source(id) {
                    Some(ValueSource::CommandLine) => Source::CommandLine,
                    Some(ValueSource::EnvVariable) => Source::Environment(
                        a.get_env()
                            .map(|e| e.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                    Some(ValueSource::DefaultValue) => Source::Default,
                    _ => Source::Unset,
                }
            };
            let kind = match a.get_action() {
                ArgAction::SetTrue => Kind::Switch,
                ArgAction::Append => Kind::List,
                _ => Kind::One,
            };
            Some(Setting {
                key,
                values,
                source,
                kind,
            })
        })
        .collect();
    Ok(Layered {
        parsed: P::from_arg_matches(&matches)?,
        file,
        settings,
    })
}

/// The matches of the subcommand at `path`, if that is the one given.
fn descend<'m>(matches: &'m ArgMatches, path: &[&str]) -> Option<&'m ArgMatches> {
    path.iter()
        .try_fold(matches, |m, name| match m.subcommand() {
            Some((n, sub)) if n == *name => Some(sub),
            _ => None,
        })
}

/// The flags of the subcommand at `path`: the top command's global ones, then each level's.
fn arguments(top: &clap::Command, path: &[&str]) -> Vec<Arg> {
    let mut args: Vec<Arg> = top
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    let mut cmd = top;
    for name in path {
        cmd = cmd.find_subcommand(name).expect("a subcommand of the CLI");
        args.extend(cmd.get_arguments().cloned());
    }
    args
}

/// Whether a flag or its environment variable already gave `arg` a value. A global flag's
/// value may be recorded at the top or in the subcommand, depending on where it was typed.
fn set_above_the_file(top: &ArgMatches, sub: &ArgMatches, arg: &Arg) -> bool {
    let id = arg.get_id().as_str();
    let above = |m: &ArgMatches| {
        matches!(
            m.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    above(sub) || (arg.is_global_set() && above(top))
}

fn read(path: &Path) -> Result<toml::Table, LayerError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LayerError::File(format!("cannot read {}: {e}", path.display())))?;
    text.parse::<toml::Table>()
        .map_err(|e| LayerError::File(format!("{} is not valid TOML: {e}", path.display())))
}

/// A TOML value as the flag's text, if it is one value.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn unknown_key(key: &str, file: &str, args: &[Arg]) -> String {
    if key.starts_with("bitcoind-rpc-password") {
        return format!(
            "{file}: {key} is not read from the configuration file; name a file holding the \
             password with bitcoind-rpc-password-file, or set SKYLIGHT_BITCOIND_RPC_PASSWORD"
        );
    }
    let spelled = key.replace('_', "-");
    if spelled != key && args.iter().any(|a| a.get_long() == Some(spelled.as_str())) {
        return format!("{file}: unknown key {key:?}; did you mean {spelled:?}?");
    }
    format!(
        "{file}: unknown key {key:?}; the keys are `scheduler run`'s flags without the dashes \
         (listen, network, node-idle-timeout, …: see `scheduler run --help`)"
    )
}
