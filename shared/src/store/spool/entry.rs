//! An entry file: its format, written atomically, and found again in the spool's folder.

use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{MAGIC, SpooledObject};
use crate::store::ObjectKey;

/// The header line of an entry file.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    /// The store the entry is meant for, so a spool folder shared by mistake between
    /// installations never delivers one's images into another's store.
    store: String,
    objects: Vec<ObjectHeader>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ObjectHeader {
    key: String,
    content_type: String,
    length: u64,
    sha256: String,
}

/// An entry read back from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub store: String,
    pub objects: Vec<SpooledObject>,
}

fn hex_sha256(body: &[u8]) -> String {
    Sha256::digest(body).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The bytes of an entry file.
pub fn encode_entry(store: &str, objects: &[SpooledObject]) -> Result<Vec<u8>, serde_json::Error> {
    let header = Header {
        store: store.to_string(),
        objects: objects
            .iter()
            .map(|object| ObjectHeader {
                key: object.key.as_str().to_string(),
                content_type: object.content_type.clone(),
                length: object.body.len() as u64,
                sha256: hex_sha256(&object.body),
            })
            .collect(),
    };
    let mut bytes = MAGIC.to_vec();
    // Compact JSON has no raw newline in it, so the header ends at the first one.
    serde_json::to_writer(&mut bytes, &header)?;
    bytes.push(b'\n');
    for object in objects {
        bytes.extend_from_slice(&object.body);
    }
    Ok(bytes)
}

/// Reads an entry file's bytes back, checking every length and checksum.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, String> {
    let rest = bytes.strip_prefix(MAGIC).ok_or("it is not a version 1 spool entry")?;
    let end = rest.iter().position(|byte| *byte == b'\n').ok_or("its header is cut off")?;
    let header: Header =
        serde_json::from_slice(&rest[..end]).map_err(|error| format!("its header is not valid: {error}"))?;
    let mut bodies = Bytes::copy_from_slice(&rest[end + 1..]);
    let mut objects = Vec::with_capacity(header.objects.len());
    for object in header.objects {
        let length = usize::try_from(object.length).map_err(|_| "an object is too large")?;
        if bodies.len() < length {
            return Err(format!("the body of `{}` is cut off", object.key));
        }
        let body = bodies.split_to(length);
        if hex_sha256(&body) != object.sha256 {
            return Err(format!("the body of `{}` does not match its checksum", object.key));
        }
        let key = ObjectKey::new(object.key).map_err(|error| error.to_string())?;
        objects.push(SpooledObject { key, content_type: object.content_type, body });
    }
    if !bodies.is_empty() {
        return Err(format!("{} bytes follow the last object", bodies.len()));
    }
    if objects.is_empty() {
        return Err("it holds no objects".into());
    }
    Ok(Entry { store: header.store, objects })
}

/// Writes `bytes` to `target` atomically: a temporary file in `incoming`, flushed to disk,
/// renamed into place, and the folder flushed so the rename itself survives a power cut.
pub(super) fn write_atomically(incoming: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(incoming)?;
    let temporary = incoming.join(ulid::Ulid::new().to_string());
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    sync_folder(target.parent().unwrap_or(incoming))
}

pub(super) fn sync_folder(folder: &Path) -> std::io::Result<()> {
    std::fs::File::open(folder)?.sync_all()
}

/// The entry files in a folder, oldest first (ULID names sort by time), with their sizes.
pub(super) fn list_entries(folder: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let listing = match std::fs::read_dir(folder) {
        Ok(listing) => listing,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut entries = Vec::new();
    for item in listing {
        let item = item?;
        let path = item.path();
        if path.extension().is_some_and(|extension| extension == "entry") && item.file_type()?.is_file() {
            entries.push((path, item.metadata()?.len()));
        }
    }
    entries.sort();
    Ok(entries)
}
