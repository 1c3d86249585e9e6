//! Invite codes: `xxxx-xxxx` from an alphabet without look-alike characters.

/// Letters and digits that cannot be mistaken for one another (no i, l, o, 0, 1).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A new random code, 8 symbols (about 40 bits), grouped `xxxx-xxxx` as Greenlight's are.
pub fn new_code() -> String {
    let mut out = String::with_capacity(9);
    let mut buf = [0u8; 32];
    let mut i = buf.len();
    while out.len() < 9 {
        if out.len() == 4 {
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
        assert_eq!(a.len(), 9);
        assert_eq!(&a[4..5], "-");
        assert!(
            a.chars()
                .filter(|c| *c != '-')
                .all(|c| ALPHABET.contains(&(c as u8)))
        );
        assert_ne!(a, new_code());
        assert_eq!(normalize(" AbCd-EfGh \n"), "abcd-efgh");
    }
}
