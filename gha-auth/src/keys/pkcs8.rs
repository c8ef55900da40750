//! Reads the algorithm identifier of a PKCS#8 document (RFC 5208), so a PEM key can be imported
//! without being told its algorithm.

use super::Algorithm;

const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;

/// The algorithm of the key in `der`, if it is one this crate signs with.
pub(crate) fn algorithm_of(der: &[u8]) -> Option<Algorithm> {
    let (tag, private_key_info, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, _version, rest) = tlv(private_key_info)?;
    if tag != INTEGER {
        return None;
    }
    let (tag, algorithm_identifier, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, oid, parameters) = tlv(algorithm_identifier)?;
    if tag != OID {
        return None;
    }
    match oid {
        OID_RSA_ENCRYPTION => Some(Algorithm::RS256),
        OID_ED25519 => Some(Algorithm::EdDSA),
        OID_EC_PUBLIC_KEY => match tlv(parameters)? {
            (OID, OID_PRIME256V1, _) => Some(Algorithm::ES256),
            _ => None,
        },
        _ => None,
    }
}

/// Splits one DER tag-length-value off `input`: (tag, value, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 3 {
            return None;
        }
        let (bytes, tail) = rest.split_at_checked(count)?;
        rest = tail;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let (value, rest) = rest.split_at_checked(len)?;
    Some((tag, value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    #[test]
    fn recognises_generated_keys() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            assert_eq!(algorithm_of(key.to_pkcs8_der().expose()), Some(alg));
        }
    }

    #[test]
    fn never_panics_on_short_or_odd_input() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x02, 0x02, 0x00],
            &[0x30, 0x82, 0xff],
        ] {
            assert_eq!(algorithm_of(input), None);
        }
    }
}
