//! The scrapes' metadata as a [`super::Deferred`] holds it between the reader's two passes:
//! packed, in chunks that go as the windows no longer need them. A week at 4 Hz is 2.4 M
//! scrape attempts: as [`Scrape`]s (160 bytes each) they held 390 MB before the first sample
//! was read; packed they hold 64 bytes each (their `seq` lives beside them, in the sorted
//! list the rows are located in), and every chunk the windows have passed is freed, so that a
//! streamed read ends holding none.

use super::Scrape;
use crate::recording::{ScrapeMeta, ScrapeStatus};
use crate::units::{MonoNs, WallNs};
use std::collections::HashMap;

/// Heads per chunk. Ours: 4 MB a chunk, a few hours of a recorder's scrapes, so that a chunk
/// is freed every few hours of a streamed week, and a recording of a few minutes is one
/// chunk. Eight in unit tests, so that every streamed test recording releases chunks.
const CHUNK: usize = if cfg!(test) { 8 } else { 1 << 16 };

const HAS_HTTP: u8 = 1;
const HAS_BODY: u8 = 2;
const HAS_COUNT: u8 = 4;
const HAS_ERROR: u8 = 8;

/// One scrape attempt's [`ScrapeMeta`] (but for `seq`) and `rows_read`, in 64 bytes. Nothing
/// is rounded: a [`Head`] unpacks to the meta it was packed from, but for two counts beyond
/// 4 G rows per scrape (`rows_read` saturates, which a real body never reaches).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Head {
    requested_at: i64,
    completed_at: i64,
    requested_mono: i64,
    completed_mono: i64,
    body_bytes: u64,
    sample_count: u64,
    rows_read: u32,
    /// Index into [`Errors`], when `flags` has [`HAS_ERROR`].
    error: u32,
    http_status: u16,
    flags: u8,
    status: ScrapeStatus,
}

impl Head {
    /// `m` packed, its error text (if any) kept once in `errors`.
    pub(super) fn pack(m: &ScrapeMeta, errors: &mut Errors) -> Head {
        let mut flags = 0;
        let mut set = |bit: u8, on: bool| {
            if on {
                flags |= bit;
            }
        };
        set(HAS_HTTP, m.http_status.is_some());
        set(HAS_BODY, m.body_bytes.is_some());
        set(HAS_COUNT, m.sample_count.is_some());
        let error = m.error.as_deref().map(|e| errors.index_of(e));
        set(HAS_ERROR, error.is_some());
        Head {
            requested_at: m.requested_at.0,
            completed_at: m.completed_at.0,
            requested_mono: m.requested_mono.0,
            completed_mono: m.completed_mono.0,
            body_bytes: m.body_bytes.unwrap_or(0),
            sample_count: m.sample_count.unwrap_or(0),
            rows_read: 0,
            error: error.unwrap_or(0),
            http_status: m.http_status.unwrap_or(0),
            flags,
            status: m.status,
        }
    }

    fn has(&self, bit: u8) -> bool {
        self.flags & bit != 0
    }

    /// Adds rows found for this scrape.
    pub(super) fn add_rows(&mut self, n: u32) {
        self.rows_read = self.rows_read.saturating_add(n);
    }

    pub(super) fn completed_mono(&self) -> MonoNs {
        MonoNs(self.completed_mono)
    }

    /// [`Scrape::is_usable`] of the scrape this unpacks to.
    pub(super) fn is_usable(&self) -> bool {
        let count = self.has(HAS_COUNT).then_some(self.sample_count);
        self.status == ScrapeStatus::Ok
            && count != Some(0)
            && count.is_none_or(|n| u64::from(self.rows_read) >= n)
    }

    /// The scrape, with no samples yet.
    pub(super) fn unpack(&self, seq: u64, errors: &Errors) -> Scrape {
        let error = self
            .has(HAS_ERROR)
            .then(|| errors.texts.get(self.error as usize).cloned())
            .flatten();
        Scrape {
            meta: ScrapeMeta {
                seq,
                requested_at: WallNs(self.requested_at),
                completed_at: WallNs(self.completed_at),
                requested_mono: MonoNs(self.requested_mono),
                completed_mono: MonoNs(self.completed_mono),
                status: self.status,
                http_status: self.has(HAS_HTTP).then_some(self.http_status),
                error,
                body_bytes: self.has(HAS_BODY).then_some(self.body_bytes),
                sample_count: self.has(HAS_COUNT).then_some(self.sample_count),
            },
            samples: Vec::new(),
            timestamps: Vec::new(),
            rows_read: u64::from(self.rows_read),
            columns: None,
        }
    }
}

/// The error texts of the failed attempts, each kept once: a server down for a day fails
/// 345,600 scrapes with a handful of distinct messages.
#[derive(Debug, Default)]
pub(super) struct Errors {
    texts: Vec<String>,
    index: HashMap<String, u32>,
}

impl Errors {
    fn index_of(&mut self, text: &str) -> u32 {
        if let Some(&i) = self.index.get(text) {
            return i;
        }
        let i = u32::try_from(self.texts.len()).unwrap_or(u32::MAX);
        self.texts.push(text.to_string());
        self.index.insert(text.to_string(), i);
        i
    }

    /// Done adding: the lookup goes.
    pub(super) fn seal(&mut self) {
        self.index = HashMap::new();
    }
}

/// Every scrape's [`Head`], by index (the scrapes sorted by `seq`), in chunks of [`CHUNK`]
/// that [`Heads::release_below`] frees.
#[derive(Debug, Default)]
pub(super) struct Heads {
    chunks: Vec<Vec<Head>>,
    len: usize,
}

impl Heads {
    /// `heads` cut into chunks, from the end, each cut shrinking `heads` in place (a large
    /// allocation shrinks without a copy), so that the heads are never held twice.
    pub(super) fn from_vec(mut heads: Vec<Head>) -> Heads {
        let len = heads.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK));
        while !heads.is_empty() {
            let at = (heads.len() - 1) / CHUNK * CHUNK;
            chunks.push(heads.split_off(at));
            heads.shrink_to_fit();
        }
        chunks.reverse();
        Heads { chunks, len }
    }

    /// Scrapes in the recording, released or not.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The head of scrape `i`, unless its chunk was released.
    pub(super) fn get(&self, i: usize) -> Option<&Head> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    /// Frees the chunks that hold only heads below `i`.
    pub(super) fn release_below(&mut self, i: usize) {
        let whole = (i / CHUNK).min(self.chunks.len());
        for c in &mut self.chunks[..whole] {
            *c = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::writer::testutil::ok_meta;

    #[test]
    fn a_head_unpacks_to_the_meta_it_was_packed_from() {
        let mut errors = Errors::default();
        let ok = ok_meta(7, 12);
        let failed = ScrapeMeta {
            status: ScrapeStatus::Timeout,
            http_status: None,
            error: Some("timed out after 1 s".to_string()),
            body_bytes: None,
            sample_count: None,
            ..ok_meta(8, 0)
        };
        let again = ScrapeMeta {
            seq: 9,
            ..failed.clone()
        };
        for m in [&ok, &failed, &again] {
            let mut h = Head::pack(m, &mut errors);
            h.add_rows(3);
            let s = h.unpack(m.seq, &errors);
            assert_eq!(&s.meta, m);
            assert_eq!(s.rows_read, 3);
            assert_eq!(h.is_usable(), s.is_usable());
        }
        assert_eq!(errors.texts.len(), 1, "one text for two failures");
        assert_eq!(std::mem::size_of::<Head>(), 64);
    }

    #[test]
    fn chunks_hold_every_head_in_order_and_release_from_the_front() {
        let mut errors = Errors::default();
        let n = CHUNK * 2 + 5;
        let heads: Vec<Head> = (0..n as u64)
            .map(|i| {
                let mut m = ok_meta(i, 1);
                m.completed_mono = MonoNs(i as i64);
                Head::pack(&m, &mut errors)
            })
            .collect();
        let mut h = Heads::from_vec(heads);
        assert_eq!(h.len(), n);
        for i in [0, CHUNK - 1, CHUNK, n - 1] {
            assert_eq!(h.get(i).map(|h| h.completed_mono()), Some(MonoNs(i as i64)));
        }
        assert!(h.get(n).is_none());
        h.release_below(CHUNK + 1);
        assert!(h.get(CHUNK - 1).is_none());
        assert_eq!(
            h.get(CHUNK).map(|h| h.completed_mono()),
            Some(MonoNs(CHUNK as i64))
        );
    }
}
