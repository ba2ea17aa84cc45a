//! Compression and encryption of serialized payloads, each behind its feature.

use crate::error::{Error, Result};

/// Largest payload decompression may produce: a corrupt or hostile value cannot make the
/// client allocate more.
#[cfg(any(feature = "lz4", feature = "zstd"))]
const MAX_DECOMPRESSED: usize = 512 * 1024 * 1024;

#[cfg(any(feature = "lz4", feature = "zstd"))]
fn corrupt(what: &str) -> Error {
    Error::type_error(format!("corrupt compressed value: {what}"))
}

/// How serialized values are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// LZ4 (feature `lz4`): fast, modest ratio.
    Lz4,
    /// Zstandard at a level from 1 to 22 (feature `zstd`): better ratio, more CPU.
    Zstd(i32),
}

impl Compression {
    pub(crate) fn id(self) -> u8 {
        match self {
            Compression::Lz4 => 1,
            Compression::Zstd(_) => 2,
        }
    }

    pub(crate) fn compress(self, data: &[u8]) -> Result<Vec<u8>> {
        match self {
            #[cfg(feature = "lz4")]
            Compression::Lz4 => Ok(lz4_flex::block::compress_prepend_size(data)),
            #[cfg(feature = "zstd")]
            Compression::Zstd(level) => zstd::bulk::compress(data, level)
                .map_err(|e| Error::type_error(format!("zstd: {e}"))),
            #[allow(unreachable_patterns)]
            other => {
                let _ = data;
                Err(Error::config(format!(
                    "{other:?} compression needs its kermes feature (lz4, zstd)"
                )))
            }
        }
    }
}

pub(crate) fn decompress(id: u8, data: &[u8]) -> Result<Vec<u8>> {
    match id {
        0 => Ok(data.to_vec()),
        #[cfg(feature = "lz4")]
        1 => {
            let size = data.get(..4).ok_or_else(|| corrupt("too short"))?;
            let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
            if size > MAX_DECOMPRESSED {
                return Err(corrupt("claims more than 512 MiB"));
            }
            lz4_flex::block::decompress(&data[4..], size).map_err(|e| corrupt(&e.to_string()))
        }
        #[cfg(feature = "zstd")]
        2 => {
            let size = zstd::zstd_safe::get_frame_content_size(data)
                .ok()
                .flatten()
                .ok_or_else(|| corrupt("no zstd frame size"))?;
            if size > MAX_DECOMPRESSED as u64 {
                return Err(corrupt("claims more than 512 MiB"));
            }
            zstd::bulk::decompress(data, size as usize).map_err(|e| corrupt(&e.to_string()))
        }
        other => Err(Error::config(format!(
            "value compressed with method {other}, which this build cannot read (features lz4, zstd)"
        ))),
    }
}

/// A key for authenticated encryption of serialized values.
#[derive(Clone)]
pub struct Cipher {
    kind: CipherKind,
    #[cfg_attr(
        not(any(feature = "aes-gcm", feature = "chacha20poly1305")),
        allow(dead_code)
    )]
    key: [u8; 32],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CipherKind {
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cipher({:?}, key: <redacted>)", self.kind)
    }
}

const NONCE: usize = 12;

#[cfg(any(feature = "aes-gcm", feature = "chacha20poly1305"))]
fn refused() -> Error {
    Error::type_error("cannot decrypt value: wrong key, or the value was altered")
}

#[cfg(any(feature = "aes-gcm", feature = "chacha20poly1305"))]
fn sealing_failed() -> Error {
    Error::type_error("encryption failed")
}

/// A nonce never used before with this key (random, 96 bits).
#[cfg(any(feature = "aes-gcm", feature = "chacha20poly1305"))]
fn random_nonce() -> Result<[u8; NONCE]> {
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce).map_err(|_| sealing_failed())?;
    Ok(nonce)
}

/// The stored form: the nonce, then the ciphertext and its tag.
#[cfg(any(feature = "aes-gcm", feature = "chacha20poly1305"))]
fn framed(nonce: &[u8; NONCE], sealed: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(NONCE + sealed.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    out
}

impl Cipher {
    /// AES-256-GCM with a 32-byte key (feature `aes-gcm`).
    pub fn aes256gcm(key: [u8; 32]) -> Cipher {
        Cipher {
            kind: CipherKind::Aes256Gcm,
            key,
        }
    }

    /// ChaCha20-Poly1305 with a 32-byte key (feature `chacha20poly1305`).
    pub fn chacha20poly1305(key: [u8; 32]) -> Cipher {
        Cipher {
            kind: CipherKind::ChaCha20Poly1305,
            key,
        }
    }

    pub(crate) fn id(&self) -> u8 {
        match self.kind {
            CipherKind::Aes256Gcm => 1,
            CipherKind::ChaCha20Poly1305 => 2,
        }
    }

    /// A fresh random nonce, then the ciphertext with its tag.
    pub(crate) fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>> {
        match self.kind {
            #[cfg(feature = "aes-gcm")]
            CipherKind::Aes256Gcm => {
                use aes_gcm::aead::{Aead, KeyInit};
                let nonce = random_nonce()?;
                let cipher =
                    aes_gcm::Aes256Gcm::new_from_slice(&self.key).map_err(|_| sealing_failed())?;
                Ok(framed(
                    &nonce,
                    cipher
                        .encrypt(&nonce.into(), plain)
                        .map_err(|_| sealing_failed())?,
                ))
            }
            #[cfg(feature = "chacha20poly1305")]
            CipherKind::ChaCha20Poly1305 => {
                use chacha20poly1305::aead::{Aead, KeyInit};
                let nonce = random_nonce()?;
                let cipher = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&self.key)
                    .map_err(|_| sealing_failed())?;
                Ok(framed(
                    &nonce,
                    cipher
                        .encrypt(&nonce.into(), plain)
                        .map_err(|_| sealing_failed())?,
                ))
            }
            #[allow(unreachable_patterns)]
            other => {
                let _ = plain;
                Err(Error::config(format!(
                    "{other:?} needs its kermes feature (aes-gcm, chacha20poly1305)"
                )))
            }
        }
    }

    /// The plaintext, or an error when the key is wrong or the value was altered.
    pub(crate) fn decrypt(&self, id: u8, data: &[u8]) -> Result<Vec<u8>> {
        if id != self.id() {
            return Err(Error::type_error(format!(
                "value encrypted with cipher {id}, but the configured key is for {:?}",
                self.kind
            )));
        }
        if data.len() < NONCE {
            return Err(Error::type_error("encrypted value too short"));
        }
        let (nonce, sealed) = data.split_at(NONCE);
        let nonce: [u8; NONCE] = nonce
            .try_into()
            .map_err(|_| Error::type_error("bad nonce"))?;
        match self.kind {
            #[cfg(feature = "aes-gcm")]
            CipherKind::Aes256Gcm => {
                use aes_gcm::aead::{Aead, KeyInit};
                let cipher =
                    aes_gcm::Aes256Gcm::new_from_slice(&self.key).map_err(|_| refused())?;
                cipher.decrypt(&nonce.into(), sealed).map_err(|_| refused())
            }
            #[cfg(feature = "chacha20poly1305")]
            CipherKind::ChaCha20Poly1305 => {
                use chacha20poly1305::aead::{Aead, KeyInit};
                let cipher = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&self.key)
                    .map_err(|_| refused())?;
                cipher.decrypt(&nonce.into(), sealed).map_err(|_| refused())
            }
            #[allow(unreachable_patterns)]
            other => {
                let _ = (nonce, sealed);
                Err(Error::config(format!(
                    "{other:?} needs its kermes feature (aes-gcm, chacha20poly1305)"
                )))
            }
        }
    }
}
