use std::time::Duration;

use super::entry::Entry;
use super::*;
use crate::store::folder::FolderStore;

fn object(key: &str, body: &'static [u8]) -> SpooledObject {
    SpooledObject {
        key: ObjectKey::new(key).unwrap(),
        content_type: "application/octet-stream".into(),
        body: Bytes::from_static(body),
    }
}

fn image_objects(id: &str) -> Vec<SpooledObject> {
    vec![
        object(&format!("users/a/images/{id}.png"), b"\x89PNG pixels"),
        object(&format!("users/a/thumbnails/{id}.jpg"), b"small"),
        object(&format!("users/a/records/{id}.json"), b"{\"id\":1}\n"),
    ]
}

#[test]
fn entries_round_trip_and_damage_is_caught() {
    let objects = image_objects("one");
    let bytes = encode_entry("s3://bucket", &objects).unwrap();
    assert!(bytes.starts_with(MAGIC));
    let entry = decode_entry(&bytes).unwrap();
    assert_eq!(entry, Entry { store: "s3://bucket".into(), objects });

    let cut = &bytes[..bytes.len() - 3];
    assert!(decode_entry(cut).unwrap_err().contains("cut off"));
    let mut flipped = bytes.clone();
    let last = flipped.len() - 2;
    flipped[last] ^= 1;
    assert!(decode_entry(&flipped).unwrap_err().contains("checksum"));
    let mut longer = bytes.clone();
    longer.push(b'x');
    assert!(decode_entry(&longer).unwrap_err().contains("follow"));
    assert!(decode_entry(b"ATELIER-SPOOL 2\n{}\n").is_err());
    assert!(decode_entry(b"").is_err());
}

#[test]
fn atomic_writes_leave_a_whole_file_or_none() {
    let folder = tempfile::tempdir().unwrap();
    let target = folder.path().join("a.entry");
    write_atomically(&folder.path().join(INCOMING), &target, b"whole").unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"whole");
    assert_eq!(std::fs::read_dir(folder.path().join(INCOMING)).unwrap().count(), 0);
    // A rename that cannot happen (into a missing folder) leaves no temporary file.
    let missing = folder.path().join("missing/b.entry");
    assert!(write_atomically(&folder.path().join(INCOMING), &missing, b"half").is_err());
    assert_eq!(std::fs::read_dir(folder.path().join(INCOMING)).unwrap().count(), 0);
    assert_eq!(list_entries(folder.path()).unwrap().len(), 1);
}

#[tokio::test]
async fn a_reopened_spool_counts_what_was_left_and_clears_half_written_files() {
    let folder = tempfile::tempdir().unwrap();
    let spool = Spool::open(folder.path(), 1 << 20, "s3://bucket".into()).unwrap();
    assert_eq!(spool.depth(), SpoolDepth::default());
    spool.push(image_objects("one")).await.unwrap();
    let depth = spool.push(image_objects("two")).await.unwrap();
    assert_eq!(depth.entries, 2);
    std::fs::write(folder.path().join(INCOMING).join("torn"), b"ATELIER-SPOOL 1\n{").unwrap();
    drop(spool);

    let reopened = Spool::open(folder.path(), 1 << 20, "s3://bucket".into()).unwrap();
    assert_eq!(reopened.depth(), depth);
    assert!(!folder.path().join(INCOMING).exists());
}

#[tokio::test]
async fn a_full_spool_refuses_and_keeps_what_it_has() {
    let folder = tempfile::tempdir().unwrap();
    let one = encode_entry("file:///x", &image_objects("one")).unwrap().len() as u64;
    let spool = Spool::open(folder.path(), one + one / 2, "file:///x".into()).unwrap();
    spool.push(image_objects("one")).await.unwrap();
    let refused = spool.push(image_objects("two")).await.unwrap_err();
    assert!(matches!(refused, SpoolError::Full { .. }), "{refused}");
    assert!(refused.to_string().contains("ATELIER_SPOOL_MAX_BYTES"), "{refused}");
    assert_eq!(spool.depth(), SpoolDepth { entries: 1, bytes: one });
    assert_eq!(list_entries(folder.path()).unwrap().len(), 1);
}

#[tokio::test]
async fn flushing_writes_in_order_skips_what_is_there_and_removes_only_after() {
    let folder = tempfile::tempdir().unwrap();
    let store = FolderStore::open(folder.path().join("store")).await.unwrap();
    let spool = Spool::open(folder.path().join("spool"), 1 << 20, store.location()).unwrap();
    spool.push(image_objects("one")).await.unwrap();
    spool.push(image_objects("two")).await.unwrap();
    // An earlier attempt whose reply was lost already wrote one image.
    let already = &image_objects("two")[0];
    store.put(&already.key, already.body.clone(), "image/png", PutMode::CreateOnly).await.unwrap();
    // An entry for another store stays; a damaged one is moved aside.
    let foreign = Spool::open(folder.path().join("spool"), 1 << 20, "s3://elsewhere".into()).unwrap();
    foreign.push(image_objects("three")).await.unwrap();
    std::fs::write(folder.path().join("spool/00000000000000000000000000.entry"), b"nonsense").unwrap();

    assert_eq!(spool.flush(&store, None).await.unwrap(), 2);
    for id in ["one", "two"] {
        for expected in image_objects(id) {
            assert_eq!(store.get(&expected.key).await.unwrap(), expected.body);
        }
    }
    assert!(store.get(&image_objects("three")[0].key).await.is_err());
    let left = list_entries(&folder.path().join("spool")).unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(folder.path().join("spool").join(REJECTED).join("00000000000000000000000000.entry").exists());
}

#[test]
fn backoff_doubles_up_to_its_ceiling_with_jitter() {
    let backoff = Backoff { first: Duration::from_millis(100), longest: Duration::from_secs(2) };
    for _ in 0..50 {
        let first = backoff.delay(1);
        assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first), "{first:?}");
        let third = backoff.delay(3);
        assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third), "{third:?}");
        let late = backoff.delay(40);
        assert!((Duration::from_secs(1)..=Duration::from_secs(2)).contains(&late), "{late:?}");
    }
}
