//! The state file: a table's live sessions on disk, so a restart or a binary
//! upgrade loses none.
//!
//! A binary upgrade runs two nginx side by side: the new one reads the file
//! when it starts, while the old one goes on learning until it stops and
//! writes the file once more. So a file replaced by another writer (told
//! apart by [`FileId`]) is merged into the running table ([`merge`]).
//!
//! Format (little-endian): magic `STKYSTAT`, format version (u32), entry
//! version of the table (u32, [`ENTRY_VERSION`]: what a key word and payload
//! mean; the zone's header may change without it), the table's hash secret (2 × u64), the entry
//! count (u64), then per entry the raw key word and payload (2 × u64), then a
//! SipHash-1-3 checksum (u64) of everything before it. Like the zone, it holds
//! keyed hashes only, never an id.
//!
//! Writing is atomic: a temporary file created 0600 beside the target,
//! fsync'd, then renamed over it. Reading refuses a file that is truncated,
//! corrupt, or from another format version; the caller logs that and starts
//! empty.
//!
//! The master writes as root into a directory the workers can write to, so
//! nothing here follows a link or trusts a name someone else may have made:
//! the temporary file is created exclusively (`O_EXCL`, `O_NOFOLLOW`), and
//! only a regular file is read back, without blocking on a FIFO or device.

use core::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use siphasher::sip::SipHasher13;

use crate::store::{Expiry, Table, WriteLock, ENTRY_VERSION};

/// First bytes of a state file.
pub const MAGIC: [u8; 8] = *b"STKYSTAT";
/// Bumped when the file format changes.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 4 + 16 + 8;
const ENTRY_LEN: usize = 16;
/// Fixed key of the checksum (integrity, not secrecy).
const SUM_KEY: (u64, u64) = (0x7374_6b79_7374_6174, 0x6368_6563_6b73_756d);
/// Largest file read back (a 4 GB zone's worth of entries).
pub const MAX_FILE: u64 = 4 << 30;

/// Why a state file was not restored.
#[derive(Debug)]
pub enum StateError {
    /// Reading failed (a missing file is `Io` with `NotFound`).
    Io(io::Error),
    /// Shorter than its header or its entry count says.
    Truncated,
    /// Larger than whoever reads it takes (its size in bytes).
    TooLarge(u64),
    /// Not a state file.
    BadMagic,
    /// Written by another format or entry version.
    Version(u32, u32),
    /// A symbolic link, FIFO, device or directory, not a regular file.
    NotRegular,
    /// The checksum does not match.
    Corrupt,
    /// Written by a table with another hash key: its sessions cannot be
    /// found in this one (merging only).
    OtherKey,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Io(e) => write!(f, "{e}"),
            StateError::Truncated => write!(f, "file is truncated"),
            StateError::TooLarge(n) => write!(f, "{n} bytes, more than this zone would take"),
            StateError::BadMagic => write!(f, "not a sticky_session state file"),
            StateError::Version(fv, lv) => write!(
                f,
                "written by another version (format {fv}, entries {lv}; this build reads format {FORMAT_VERSION}, entries {ENTRY_VERSION})"
            ),
            StateError::Corrupt => write!(f, "checksum mismatch, file is corrupt"),
            StateError::NotRegular => write!(
                f,
                "not a regular file (a symbolic link, FIFO or device is never read)"
            ),
            StateError::OtherKey => write!(
                f,
                "written by a zone with another hash key (another zone, or another sync_key)"
            ),
        }
    }
}

/// Seconds between two periodic writes of a state file (`save_every=`).
pub const DEFAULT_SAVE_EVERY: u32 = 30;

/// Which file a path named when it was last looked at. Every write is a
/// new file renamed over the path, so a file that another process wrote
/// has another identity than the one this process wrote or read last.
/// All zero: no file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileId {
    /// No file.
    pub const NONE: FileId = FileId {
        dev: 0,
        ino: 0,
        size: 0,
        mtime: 0,
        mtime_nsec: 0,
    };

    fn of(meta: &fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }

    /// The regular file at `path` now, without following a link; `NONE`
    /// when there is none.
    pub fn at(path: &Path) -> FileId {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_file() => FileId::of(&meta),
            _ => FileId::NONE,
        }
    }

    /// Whether this, the file at the path now, was written by someone else
    /// since this process wrote or read `known` there: a file to merge.
    pub fn replaces(self, known: FileId) -> bool {
        self != FileId::NONE && self != known
    }
}

/// Whether a state file last written at `last` (0: never) is due at `now`.
pub fn save_due(last: u32, every: u32, now: u32) -> bool {
    now.saturating_sub(last) >= every
}

/// An nginx process, as far as saving state is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    /// The master, which writes every state file once more at exit.
    Master,
    /// A worker and its index.
    Worker(usize),
    /// nginx running without a master (`master_process off`).
    Single,
    /// A cache manager, loader or other helper.
    Helper,
}

/// Whether `process` writes the state files periodically (`save_every=`):
/// worker 0 (one writer per table), or the single process.
pub fn saves_periodically(process: Process) -> bool {
    matches!(process, Process::Worker(0) | Process::Single)
}

/// The live sessions of `table`, encoded.
pub fn encode(table: &Table<'_>, now: u32, exp: Expiry) -> Vec<u8> {
    let mut entries = Vec::new();
    table.for_each_entry(now, exp, |word, val| {
        entries.extend_from_slice(&word.to_le_bytes());
        entries.extend_from_slice(&val.to_le_bytes());
    });
    let secret = table.secret();
    let mut out = Vec::with_capacity(HEADER_LEN + entries.len() + 8);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&ENTRY_VERSION.to_le_bytes());
    out.extend_from_slice(&secret[0].to_le_bytes());
    out.extend_from_slice(&secret[1].to_le_bytes());
    out.extend_from_slice(&((entries.len() / ENTRY_LEN) as u64).to_le_bytes());
    out.extend_from_slice(&entries);
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

fn checksum(bytes: &[u8]) -> u64 {
    SipHasher13::new_with_keys(SUM_KEY.0, SUM_KEY.1).hash(bytes)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

/// A decoded, verified state file.
pub struct Decoded<'a> {
    /// The hash secret of the table that wrote it.
    pub secret: [u64; 2],
    entries: &'a [u8],
}

impl Decoded<'_> {
    /// Number of sessions in the file.
    pub fn len(&self) -> usize {
        self.entries.len() / ENTRY_LEN
    }

    /// True when the file holds no session.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Puts the file's sessions into `table`, which must have been formatted
    /// with [`Decoded::secret`]. Returns how many were stored (expired ones
    /// are skipped; in a smaller table a newer session may replace an older
    /// one stored before it, so at most the table's capacity remain).
    pub fn restore_into(
        &self,
        table: &Table<'_>,
        lock: &(impl WriteLock + ?Sized),
        now: u32,
        exp: Expiry,
    ) -> usize {
        self.entries
            .chunks_exact(ENTRY_LEN)
            .filter(|e| table.restore(lock, u64_at(e, 0), u64_at(e, 8), now, exp))
            .count()
    }
}

/// What merging a state file did.
#[derive(Debug, PartialEq, Eq)]
pub struct Merged {
    /// The file merged.
    pub id: FileId,
    /// Sessions it held.
    pub total: usize,
    /// How many of them the table took: those it lacked, and newer copies
    /// of those it held.
    pub restored: usize,
}

/// Merges the state file at `path` into `table`, which goes on serving: a
/// session the table lacks is added, one it holds keeps the more recently
/// used copy (see [`Table::restore`]). For a file another process wrote
/// over this one's, such as the other nginx of a binary upgrade. A file of
/// more sessions than four such tables hold is refused unread: a worker
/// does not take in whatever someone put there.
pub fn merge(
    path: &Path,
    table: &Table<'_>,
    lock: &(impl WriteLock + ?Sized),
    now: u32,
    exp: Expiry,
) -> Result<Merged, StateError> {
    let most = (table.capacity() as u64)
        .saturating_mul(4 * ENTRY_LEN as u64)
        .saturating_add((HEADER_LEN + 8) as u64)
        .min(MAX_FILE);
    let (bytes, id) = read_at_most(path, most)?;
    let d = decode(&bytes)?;
    if d.secret != table.secret() {
        return Err(StateError::OtherKey);
    }
    Ok(Merged {
        id,
        total: d.len(),
        restored: d.restore_into(table, lock, now, exp),
    })
}

/// Verifies and decodes the bytes of a state file.
pub fn decode(b: &[u8]) -> Result<Decoded<'_>, StateError> {
    if b.len() < 8 || b[..8] != MAGIC {
        return Err(if b.len() < 8 && MAGIC.starts_with(b) {
            StateError::Truncated
        } else {
            StateError::BadMagic
        });
    }
    if b.len() < HEADER_LEN + 8 {
        return Err(StateError::Truncated);
    }
    let (fv, lv) = (u32_at(b, 8), u32_at(b, 12));
    if fv != FORMAT_VERSION || lv != ENTRY_VERSION {
        return Err(StateError::Version(fv, lv));
    }
    let count = u64_at(b, 32);
    let want = count
        .checked_mul(ENTRY_LEN as u64)
        .and_then(|n| n.checked_add((HEADER_LEN + 8) as u64));
    match want {
        Some(n) if n == b.len() as u64 => {}
        Some(n) if n > b.len() as u64 => return Err(StateError::Truncated),
        _ => return Err(StateError::Corrupt),
    }
    let body = &b[..b.len() - 8];
    if checksum(body) != u64_at(b, b.len() - 8) {
        return Err(StateError::Corrupt);
    }
    Ok(Decoded {
        secret: [u64_at(b, 16), u64_at(b, 24)],
        entries: &body[HEADER_LEN..],
    })
}

/// Reads a state file whole (at most [`MAX_FILE`] bytes): only a regular
/// file, opened without following a link and without blocking. Returns its
/// bytes and which file they came from.
pub fn read(path: &Path) -> Result<(Vec<u8>, FileId), StateError> {
    read_at_most(path, MAX_FILE)
}

/// As [`read`], refusing a file of more than `max` bytes before reading it.
fn read_at_most(path: &Path, max: u64) -> Result<(Vec<u8>, FileId), StateError> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => StateError::NotRegular,
            _ => StateError::Io(e),
        })?;
    let meta = f.metadata().map_err(StateError::Io)?;
    if !meta.file_type().is_file() {
        return Err(StateError::NotRegular);
    }
    if meta.len() > max {
        return Err(StateError::TooLarge(meta.len()));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    // A file that grows while read is cut at its size when opened: decode
    // then finds it inconsistent.
    f.take(meta.len())
        .read_to_end(&mut buf)
        .map_err(StateError::Io)?;
    Ok((buf, FileId::of(&meta)))
}

/// Writes `bytes` to `path` atomically: a 0600 temporary file beside it
/// (named after `path` and `tag`, e.g. the process id, so concurrent writers
/// never share one), written and flushed to disk a megabyte at a time, then
/// renamed over `path`.
///
/// Whatever already has the temporary name (a stale file from a crash, or a
/// link or file planted by whoever else can write the directory) is removed,
/// never opened: the data only ever goes into a file this call created.
/// Returns which file the path now names.
pub fn write_atomic(path: &Path, bytes: &[u8], tag: u32) -> io::Result<FileId> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{tag}"));
    let tmp = Path::new(&tmp);
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(tmp)
    };
    let mut f = match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(tmp)?;
            create()?
        }
        other => other?,
    };
    let result = (|| {
        write_paced(&mut f, bytes)?;
        f.sync_all()?;
        let id = FileId::of(&f.metadata()?);
        fs::rename(tmp, path)?;
        Ok(id)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// Writes `bytes` a megabyte at a time, each flushed to disk before the
/// next (`fdatasync`): the disk takes a large table as a steady stream
/// rather than one burst at the end, which stalled the other processes on a
/// small machine (`make bench`: a 57 MB file delayed requests by ~12 ms).
fn write_paced(f: &mut fs::File, bytes: &[u8]) -> io::Result<()> {
    for chunk in bytes.chunks(1 << 20) {
        f.write_all(chunk)?;
        f.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Bind, Header, Slot, WAYS};
    use core::sync::atomic::{AtomicBool, Ordering};
    use std::fs::File;

    #[derive(Default)]
    struct Lock(AtomicBool);
    impl WriteLock for Lock {
        fn lock(&self) {
            while self.0.swap(true, Ordering::Acquire) {}
        }
        fn unlock(&self) {
            self.0.store(false, Ordering::Release);
        }
    }

    fn slots(buckets: usize) -> Vec<Slot> {
        (0..buckets * WAYS).map(|_| Slot::default()).collect()
    }

    const EXP: Expiry = Expiry::idle(600);

    #[test]
    fn when_a_state_file_is_due() {
        let cases = [
            (0, 30, 1000, true),
            (990, 30, 1000, false),
            (970, 30, 1000, true),
            (1000, 1, 1000, false),
        ];
        for (last, every, now, want) in cases {
            assert_eq!(save_due(last, every, now), want, "{last} {every} {now}");
        }
    }

    #[test]
    fn who_saves_periodically() {
        let cases = [
            (Process::Worker(0), true),
            (Process::Worker(1), false),
            (Process::Single, true),
            (Process::Master, false),
            (Process::Helper, false),
        ];
        for (p, want) in cases {
            assert_eq!(saves_periodically(p), want, "{p:?}");
        }
    }

    #[test]
    fn files_of_earlier_releases_are_restored_and_other_entries_refused() {
        // A file as releases before the zone header grew wrote it: format 1,
        // then the table's layout version, 2, where the entry version is now.
        let (h, s, lock) = (Header::default(), slots(8), Lock::default());
        let t = Table::format(&h, &s, [11, 22]).unwrap();
        let key = t.key(b"old-session");
        t.learn(&lock, key, 5, 1000, EXP, Bind::Keep);
        let mut entry = Vec::new();
        t.for_each_entry(1000, EXP, |w, v| entry = [w, v].to_vec());
        let file = |version: u32| {
            let mut b = b"STKYSTAT".to_vec();
            for w in [1u32, version] {
                b.extend_from_slice(&w.to_le_bytes());
            }
            for w in [11u64, 22, 1, entry[0], entry[1]] {
                b.extend_from_slice(&w.to_le_bytes());
            }
            let sum =
                SipHasher13::new_with_keys(0x7374_6b79_7374_6174, 0x6368_6563_6b73_756d).hash(&b);
            b.extend_from_slice(&sum.to_le_bytes());
            b
        };
        let old = file(2);
        let d = decode(&old).unwrap();
        let (h2, s2) = (Header::default(), slots(8));
        let t2 = Table::format(&h2, &s2, d.secret).unwrap();
        assert_eq!(d.restore_into(&t2, &lock, 1001, EXP), 1);
        assert_eq!(t2.lookup(key, 1001, EXP), crate::store::Lookup::Hit(5));
        // What this build writes is that file, byte for byte.
        assert_eq!(encode(&t, 1000, EXP), old);
        // Entries of another meaning are refused.
        assert!(matches!(decode(&file(3)), Err(StateError::Version(1, 3))));
    }

    #[test]
    fn round_trip_keeps_live_sessions_only() {
        let (h, s, lock) = (Header::default(), slots(64), Lock::default());
        let t = Table::format(&h, &s, [11, 22]).unwrap();
        for i in 0..300u32 {
            let now = if i < 100 { 1000 } else { 2000 };
            t.learn(&lock, t.key(&i.to_le_bytes()), i % 3, now, EXP, Bind::Keep);
        }
        let bytes = encode(&t, 2000, EXP);
        let d = decode(&bytes).unwrap();
        assert_eq!(d.secret, [11, 22]);
        assert_eq!(d.len(), 200, "the 100 sessions idle since 1000 had expired");

        let (h2, s2) = (Header::default(), slots(64));
        let t2 = Table::format(&h2, &s2, d.secret).unwrap();
        assert_eq!(d.restore_into(&t2, &lock, 2001, EXP), 200);
        for i in 100..300u32 {
            let k = t2.key(&i.to_le_bytes());
            assert_eq!(
                t2.lookup(k, 2001, EXP),
                crate::store::Lookup::Hit(i % 3),
                "id {i}"
            );
        }
        // Restored later than the timeout allows: nothing comes back.
        let (h3, s3) = (Header::default(), slots(64));
        let t3 = Table::format(&h3, &s3, d.secret).unwrap();
        assert_eq!(d.restore_into(&t3, &lock, 2000 + 601, EXP), 0);
    }

    #[test]
    fn a_smaller_table_keeps_the_most_recent() {
        let (h, s, lock) = (Header::default(), slots(64), Lock::default());
        let t = Table::format(&h, &s, [1, 2]).unwrap();
        for i in 0..400u32 {
            t.learn(
                &lock,
                t.key(&i.to_le_bytes()),
                1,
                1000 + i,
                Expiry::idle(10_000),
                Bind::Keep,
            );
        }
        let bytes = encode(&t, 1400, Expiry::idle(10_000));
        let d = decode(&bytes).unwrap();
        let (h2, s2) = (Header::default(), slots(8));
        let t2 = Table::format(&h2, &s2, d.secret).unwrap();
        let kept = d.restore_into(&t2, &lock, 1400, Expiry::idle(10_000));
        assert!(
            kept >= 8 * WAYS,
            "stored {kept} (an older session may be replaced by a newer one)"
        );
        let mut live = 0;
        t2.for_each_live(1400, Expiry::idle(10_000), |_| live += 1);
        assert_eq!(live, 8 * WAYS, "every slot of the smaller table is used");
        // Per bucket, the newest sessions won: the newest id of all is there.
        assert_eq!(
            t2.lookup(t2.key(&399u32.to_le_bytes()), 1400, Expiry::idle(10_000)),
            crate::store::Lookup::Hit(1)
        );
    }

    #[test]
    fn damaged_files_are_refused() {
        let (h, s, lock) = (Header::default(), slots(8), Lock::default());
        let t = Table::format(&h, &s, [3, 4]).unwrap();
        for i in 0..20u32 {
            t.learn(&lock, t.key(&i.to_le_bytes()), 1, 100, EXP, Bind::Keep);
        }
        let good = encode(&t, 100, EXP);
        assert!(decode(&good).is_ok());
        for cut in [0, 3, 8, 20, HEADER_LEN, good.len() - 1] {
            assert!(
                matches!(decode(&good[..cut]), Err(StateError::Truncated)),
                "cut at {cut}"
            );
        }
        let mut flipped = good.clone();
        flipped[HEADER_LEN + 5] ^= 1;
        assert!(matches!(decode(&flipped), Err(StateError::Corrupt)));
        let mut version = good.clone();
        version[8] = 99;
        assert!(matches!(decode(&version), Err(StateError::Version(99, _))));
        assert!(matches!(
            decode(b"GIF89a.............................................."),
            Err(StateError::BadMagic)
        ));
        let mut longer = good.clone();
        longer.extend_from_slice(&[0; 16]);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn writes_are_atomic_and_private() {
        let dir = std::env::temp_dir().join(format!("sticky-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sessions.state");
        write_atomic(&path, b"first", 1).unwrap();
        write_atomic(&path, b"second", 1).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        assert!(write_atomic(&dir.join("missing/dir/x"), b"x", 1).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sticky-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_link_planted_at_the_temporary_name_is_never_written_through() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = scratch("planted-link");
        let (path, victim) = (dir.join("s.state"), dir.join("victim"));
        fs::write(&victim, b"precious").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        symlink(&victim, dir.join("s.state.tmp.7")).unwrap();
        write_atomic(&path, b"state", 7).unwrap();
        assert_eq!(
            fs::read(&victim).unwrap(),
            b"precious",
            "the link's target is untouched"
        );
        assert_eq!(fs::read(&path).unwrap(), b"state");
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(
            !dir.join("s.state.tmp.7").exists(),
            "the planted link is gone"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_planted_at_the_temporary_name_is_replaced_not_reused() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = scratch("planted-file");
        let path = dir.join("s.state");
        let planted = dir.join("s.state.tmp.9");
        fs::write(&planted, b"someone else's").unwrap();
        fs::set_permissions(&planted, fs::Permissions::from_mode(0o666)).unwrap();
        let planted_inode = fs::metadata(&planted).unwrap().ino();
        // Whoever planted it keeps an open handle, hoping to read the state.
        let mut spy = File::open(&planted).unwrap();
        write_atomic(&path, b"secret state", 9).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_ne!(
            meta.ino(),
            planted_inode,
            "a fresh file, not the planted one"
        );
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let mut seen = Vec::new();
        spy.read_to_end(&mut seen).unwrap();
        assert_eq!(
            seen, b"someone else's",
            "the planted file never receives the state"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_another_process_wrote_is_told_from_this_ones() {
        use std::os::unix::fs::symlink;
        let dir = scratch("file-id");
        let path = dir.join("s.state");
        assert_eq!(FileId::at(&path), FileId::NONE);
        assert!(
            !FileId::NONE.replaces(FileId::NONE),
            "no file: nothing to merge"
        );
        let ours = write_atomic(&path, b"same bytes", 1).unwrap();
        assert_ne!(ours, FileId::NONE);
        assert_eq!(FileId::at(&path), ours);
        assert_eq!(read(&path).unwrap().1, ours, "what was read is known");
        assert!(!FileId::at(&path).replaces(ours), "this process's own file");
        // Another process writes the same bytes: still another file.
        let theirs = write_atomic(&path, b"same bytes", 2).unwrap();
        assert_eq!(FileId::at(&path), theirs);
        assert!(theirs.replaces(ours), "another writer's file is merged");
        fs::remove_file(&path).unwrap();
        assert!(!FileId::at(&path).replaces(ours), "a removed file is not");
        symlink(dir.join("elsewhere"), &path).unwrap();
        assert_eq!(
            FileId::at(&path),
            FileId::NONE,
            "a link is never a state file"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn merging_adds_what_the_table_lacks_and_keeps_the_newer_copy() {
        let dir = scratch("merge");
        let path = dir.join("s.state");
        let lock = Lock::default();
        // The old nginx of a binary upgrade and the new one, which read the
        // old one's file when it started: the same key, sessions 0..10.
        let (h, s, h2, s2) = (Header::default(), slots(64), Header::default(), slots(64));
        let old = Table::format(&h, &s, [5, 6]).unwrap();
        let new = Table::format(&h2, &s2, [5, 6]).unwrap();
        let key = |i: u32| old.key(&i.to_le_bytes());
        for i in 0..10 {
            old.learn(&lock, key(i), 1, 1000, EXP, Bind::Keep);
            new.learn(&lock, key(i), 1, 1000, EXP, Bind::Keep);
        }
        // Then the old one learns 10..20 and moves session 3 to server 2;
        // the new one learns 20..25 and, later, moves session 4 to server 3.
        for i in 10..20 {
            old.learn(&lock, key(i), 2, 1100, EXP, Bind::Keep);
        }
        old.learn(&lock, key(3), 2, 1100, EXP, Bind::Rebind);
        old.learn(&lock, key(4), 2, 1100, EXP, Bind::Rebind);
        for i in 20..25 {
            new.learn(&lock, key(i), 3, 1200, EXP, Bind::Keep);
        }
        new.learn(&lock, key(4), 3, 1200, EXP, Bind::Rebind);
        // The old one writes its file as it stops; the new one merges it.
        let written = write_atomic(&path, &encode(&old, 1150, EXP), 1).unwrap();
        let merged = merge(&path, &new, &lock, 1300, EXP).unwrap();
        assert_eq!(merged.id, written);
        assert_eq!(merged.total, 20);
        assert_eq!(merged.restored, 11, "sessions 10..20, and session 3's move");
        let server = |i: u32| match new.lookup(key(i), 1300, EXP) {
            crate::store::Lookup::Hit(s) => s,
            other => panic!("session {i}: {other:?}"),
        };
        for (i, want) in [
            (0, 1),
            (3, 2),
            (4, 3),
            (9, 1),
            (10, 2),
            (19, 2),
            (20, 3),
            (24, 3),
        ] {
            assert_eq!(server(i), want, "session {i}");
        }
        // Merging the same file again changes nothing.
        assert_eq!(merge(&path, &new, &lock, 1300, EXP).unwrap().restored, 0);
        // A file larger than four such tables hold is not read.
        let big = dir.join("big.state");
        fs::File::create(&big)
            .unwrap()
            .set_len((HEADER_LEN + 8 + 4 * new.capacity() * ENTRY_LEN + 1) as u64)
            .unwrap();
        assert!(matches!(
            merge(&big, &new, &lock, 1300, EXP),
            Err(StateError::TooLarge(_))
        ));

        // A file of a zone with another key is refused, the table untouched.
        let (h3, s3) = (Header::default(), slots(64));
        let other = Table::format(&h3, &s3, [7, 8]).unwrap();
        assert!(matches!(
            merge(&path, &other, &lock, 1300, EXP),
            Err(StateError::OtherKey)
        ));
        let mut live = 0;
        other.for_each_live(1300, EXP, |_| live += 1);
        assert_eq!(live, 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_a_regular_file_is_read() {
        use std::os::unix::fs::symlink;
        let dir = scratch("read-kinds");
        let real = dir.join("real");
        fs::write(&real, b"STKYSTAT").unwrap();
        assert_eq!(read(&real).unwrap().0, b"STKYSTAT");
        let link = dir.join("link");
        symlink(&real, &link).unwrap();
        assert!(matches!(read(&link), Err(StateError::NotRegular)), "a link");
        let fifo = dir.join("fifo");
        // No writer ever opens it: a blocking open would hang here.
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(matches!(read(&fifo), Err(StateError::NotRegular)), "a FIFO");
        assert!(
            matches!(read(Path::new("/dev/zero")), Err(StateError::NotRegular)),
            "a device"
        );
        assert!(
            matches!(read(&dir), Err(StateError::NotRegular)),
            "a directory"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
