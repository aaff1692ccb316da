//! SHA-256 digests as lowercase hex, the form `sha256sum` prints on the hosts.

use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
