// Package output writes analysis results to disk: one JSON file per S3 object, written
// atomically, at a path derived from the bucket and the key that stays inside the output
// directory whatever the key holds.
//
// # Layout
//
// The result for key K in bucket B is the file
//
//	DIR/B/P1/P2/…/Pn.json
//
// where P1…Pn are K split at every "/", each escaped as below. Ordinary keys stay readable:
// "logs/2024/app.log.gz" in bucket "b" is DIR/b/logs/2024/app.log.gz.json. The bucket is
// escaped like a directory part, with "/" escaped too.
//
// Each part is escaped one character at a time, with %XX (upper-case hex) for one byte:
//
//   - "%" is always escaped, so an escape can be undone without doubt;
//   - control bytes (below 0x20, and 0x7F), "/" and "\" are escaped;
//   - a leading "." is escaped ("%2E"), so that no part is "." or "..", no result is a
//     hidden file, and no part looks like a temporary file (those start with ".palleto-");
//   - bytes that are not valid UTF-8, and characters that are not graphic (format controls
//     such as U+202E, which reverses text in listings, U+2028, zero-width spaces), are
//     escaped byte by byte; all other Unicode is kept as it is;
//   - an empty part (the keys "a//b", "/abs", "a/") is written as a lone "%";
//   - a directory part (any part but the last) that would end in ".json", in any case, has
//     that dot escaped: key "a.json/b" is a%2Ejson/b.json, so no directory can take the
//     name of a result file (key "a" is a.json) and keys "a" and "a/b" live side by side;
//   - a part whose escaped form is longer than 200 bytes is cut to at most 160 escaped bytes,
//     between characters, followed by "%~" and the first 32 hex digits of the SHA-256 of the
//     raw part. With the ".json" suffix every file name stays under 210 bytes, well within
//     the 255-byte limit, whatever the key's length (S3 keys are up to 1024 bytes).
//
// Escaping never yields a lone "%" or "%~", so the three forms cannot be confused. Without
// long parts the mapping can be undone (split at "/", unescape each part), so two different
// keys, or one key in two buckets, never share a file; a long part is told apart by its
// 128-bit hash. [RelPath] computes the mapping without touching the disk.
//
// All file operations go through an [os.Root] opened on the output directory, so that even
// a symbolic link planted inside it cannot lead a write outside.
//
// The mapping is exact on file systems that compare names byte for byte (the usual Linux
// ones). Where names are compared without case or Unicode normalisation (the defaults of
// macOS and Windows), two keys can land on one file; every result file records its bucket
// and key, and a write that finds another key's result there fails with [ErrCollision]
// rather than replace it.
//
// # Writing
//
// [Writer.Write] writes a result to a temporary file in the target directory, syncs it,
// renames it over the result file and syncs the directory, so that a reader sees either the
// old result or the new one, and a result that was reported written survives a crash. The
// syncs of concurrent writes are shared (group commit): a write waits for a round of syncs
// that began after it asked, and a round syncs each file and directory it holds once. A
// round begins no sooner than 3 ms after the one before began, so that a busy Writer syncs
// several results per round rather than one or two; a write that comes after a pause waits
// for no one. On Linux 5.8 and later, a round of three or more makes one syncfs call for the
// file system instead, which writes out everything pending on it (other files too) and
// reports any write error since the Writer was opened; a write error fails every write of
// the round. The directories a write makes for its result (bucket, key prefixes) are made
// durable the same way: their parents are synced as items of one round, shared with the
// writes around it. So is the output directory itself when [NewWriter] makes it (with any
// missing parents), before it returns. On error the temporary file is removed; only a crash
// can leave one behind (".palleto-*.tmp", safe to delete), and [Writer.Sweep] removes those.
// To know when to sweep without walking the directory at each start, a Writer keeps a file
// at its top while it is open ([OpenMarker], written and synced by NewWriter, which also
// proves that the file system takes writes) and removes it when it closes; a Writer that
// finds one is [Writer.Unclean] until a Sweep finds nothing left (palleto run sweeps then).
// Before writing it reads the result already there:
//
//   - the same object (equal sequencer, ETag and version id): the file is left as it is,
//     byte for byte, and the outcome is [Duplicate];
//   - a newer event (higher sequencer) for the key: nothing is written, the outcome is
//     [Stale];
//   - otherwise, or when the file cannot be parsed as a result: the file is replaced, the
//     outcome is [Written].
//
// Sequencers are hexadecimal strings of varying length, compared by AWS's documented rule
// (s3event.CompareSequencer: the shorter padded with zeros on the right, then compared as
// strings, case ignored). When either is empty the order is unknown and the write goes
// ahead. Writes of one result file are serialised by the Writer, which holds its directory
// alone: a second Writer on it, in this process or another, is refused (ErrInUse).
package output
