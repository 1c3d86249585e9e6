//! Invite codes: `xxxx-xxxx-xxxx` from an alphabet without look-alike characters.

/// Letters and digits that cannot be mistaken for one another (no i, l, o, 0, 1).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Symbols in a code: 12 from 31 is about 59 bits, too many to guess online even with
/// thousands of codes outstanding (Greenlight's `xxxx-xxxx` would be about 40).
const SYMBOLS: usize = 12;
const LEN: usize = SYMBOLS + SYMBOLS / 4 - 1;

/// A new random code, grouped by four: `xxxx-xxxx-xxxx`.
pub fn new_code() -> String {
    let mut out = String::with_capacity(LEN);
    let mut buf = [0u8; 32];
    let mut i = buf.len();
    while out.len() < LEN {
        if out.len() % 5 == 4 {
            out.push('-');
            continue;
        }
        if i == buf.len() {
            getrandom::getrandom(&mut buf).expect("the operating system's random source failed");
            i = 0;
        }
        let b = buf[i];
        i += 1;
        // Rejection sampling keeps every symbol equally likely.
        let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
        if b < limit {
            out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
        }
    }
    out
}

/// The form a user typed, as stored: trimmed and lower-case.
pub fn normalize(code: &str) -> String {
    code.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_expected_shape_and_differ() {
        let a = new_code();
        assert_eq!(a.len(), 14);
        assert_eq!(&a[4..5], "-");
        assert_eq!(&a[9..10], "-");
        assert!(
            a.chars()
                .filter(|c| *c != '-')
                .all(|c| ALPHABET.contains(&(c as u8)))
        );
        assert_ne!(a, new_code());
        assert_eq!(normalize(" AbCd-EfGh \n"), "abcd-efgh");
    }
}
