//! Prefixes kept across calls: snapshots of sequence 0's KV (`S`, llama.cpp's serialized
//! sequence state) with the tokens they hold, in least-recently-used order.
//!
//! DLN's calls alternate (score the candidates, generate, score the hidden texts whose prefix
//! was decoded two calls before), so the one live sequence alone loses a prefix as soon as an
//! unrelated call runs. A snapshot is restored into sequence 0 when a request shares a longer
//! prefix with it than with the live sequence. Snapshots live in host memory rather than in
//! spare KV cells: restored into an emptied cache they land in the first cells, in order, so the
//! live KV layout stays the canonical one that generation's reproducibility rests on (see
//! `generate`), and attention never spans cells held for later.
//!
//! The store is bounded both in entries and in tokens; the token bound is the context size, so
//! the kept KV never takes more memory than the context's own KV cache.

/// One kept prefix: the tokens sequence 0 held from position 0 and its KV state.
pub struct Entry<S> {
    pub tokens: Vec<i32>,
    pub state: S,
}

/// Least recently used first.
pub struct KeptPrefixes<S> {
    entries: Vec<Entry<S>>,
    max_entries: usize,
    max_tokens: usize,
}

impl<S> KeptPrefixes<S> {
    pub fn new(max_entries: usize, max_tokens: usize) -> Self {
        KeptPrefixes {
            entries: Vec::new(),
            max_entries,
            max_tokens,
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Tokens held by all entries together.
    pub fn total_tokens(&self) -> usize {
        self.entries.iter().map(|e| e.tokens.len()).sum()
    }

    /// Whether an entry already holds `tokens` as a prefix (then it is marked as recently used
    /// and no new snapshot is needed).
    pub fn covers(&mut self, tokens: &[i32]) -> bool {
        match self
            .entries
            .iter()
            .position(|e| e.tokens.starts_with(tokens))
        {
            Some(i) => {
                self.touch(i);
                true
            }
            None => false,
        }
    }

    /// Adds a snapshot as the most recently used; entries it extends are dropped, then the
    /// least recently used ones until both bounds hold. A snapshot larger than the token bound
    /// is not kept.
    pub fn insert(&mut self, tokens: Vec<i32>, state: S) {
        if tokens.is_empty() || tokens.len() > self.max_tokens || self.max_entries == 0 {
            return;
        }
        self.entries.retain(|e| !tokens.starts_with(&e.tokens));
        self.entries.push(Entry { tokens, state });
        while self.entries.len() > self.max_entries || self.total_tokens() > self.max_tokens {
            self.entries.remove(0);
        }
    }

    /// The entry sharing the longest prefix with `tokens` (the most recent on a tie) and that
    /// length; `None` when no entry shares a token.
    pub fn best(&self, tokens: &[i32]) -> Option<(usize, usize)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, super::plan::common_prefix(&e.tokens, tokens)))
            .filter(|&(_, n)| n > 0)
            .max_by_key(|&(i, n)| (n, i))
    }

    /// Marks entry `i` as the most recently used and returns it.
    pub fn touch(&mut self, i: usize) -> &Entry<S> {
        let entry = self.entries.remove(i);
        self.entries.push(entry);
        &self.entries[self.entries.len() - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_picks_the_longest_shared_prefix() {
        let mut k = KeptPrefixes::new(4, 100);
        k.insert(vec![1, 2, 3, 4], "a");
        k.insert(vec![1, 2, 9], "b");
        k.insert(vec![7, 8], "c");
        assert_eq!(k.best(&[1, 2, 3, 5]), Some((0, 3)));
        assert_eq!(k.best(&[7]), Some((2, 1)));
        assert_eq!(k.best(&[5]), None);
        assert_eq!(k.touch(0).state, "a");
        assert_eq!(k.best(&[1, 2, 3]), Some((2, 3)));
    }

    #[test]
    fn least_recently_used_entries_go_first_within_both_bounds() {
        let mut k = KeptPrefixes::new(2, 10);
        k.insert(vec![1, 1, 1], 1);
        k.insert(vec![2, 2, 2], 2);
        assert!(k.covers(&[1, 1]));
        k.insert(vec![3, 3, 3], 3);
        assert_eq!(k.len(), 2);
        assert!(
            k.best(&[2]).is_none(),
            "entry 2 was the least recently used"
        );
        k.insert(vec![4; 6], 4);
        assert_eq!((k.len(), k.total_tokens()), (2, 9));
        k.insert(vec![6; 8], 6);
        assert_eq!(
            (k.len(), k.total_tokens()),
            (1, 8),
            "the token bound evicts too"
        );
        k.insert(vec![5; 11], 5);
        assert_eq!(k.len(), 1, "a snapshot over the token bound is not kept");
    }

    #[test]
    fn a_snapshot_replaces_the_entries_it_extends() {
        let mut k = KeptPrefixes::new(4, 100);
        k.insert(vec![1, 2], 'a');
        k.insert(vec![1, 2, 3], 'b');
        assert_eq!(k.len(), 1);
        assert!(k.covers(&[1, 2]));
        assert!(!k.covers(&[1, 3]));
    }
}
