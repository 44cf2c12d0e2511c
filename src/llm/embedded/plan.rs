//! Scoring plan: a batch of `log p(target | context)` items laid out as a depth-first walk of
//! the prefix tree of their token sequences.
//!
//! Each item is a token sequence `full = context ++ target`; scoring it needs the logits at the
//! positions `first-1 ..= len-2` (the last target token itself is never decoded). Sorting the
//! decode sequences lexicographically visits the prefix tree depth-first, so keeping one KV
//! sequence and truncating it back to the common prefix before each job computes every distinct
//! prefix once. An item whose decode sequence is a prefix of the next one's is folded into that
//! job (its logits are read on the way), so a context shared by many single-token targets is
//! decoded once and read once.
//!
//! The plan is pure data (token ids as `i32`), so it is unit-tested without a model.

/// One item to score: `tokens[first..]` is the target, `tokens[..first]` the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreItem {
    pub tokens: Vec<i32>,
    /// Index of the first target token; at least 1 (a target token needs a preceding position).
    pub first: usize,
}

/// Read the logits row at `pos` and take the log-probability of `token` for `item`'s target
/// token number `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub item: usize,
    pub index: usize,
    pub pos: usize,
    pub token: i32,
}

/// Decode `tokens` (reusing whatever prefix is already in the KV cache) and serve `reads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub tokens: Vec<i32>,
    /// Sorted by position.
    pub reads: Vec<Read>,
}

impl Job {
    /// The earliest position whose logits this job needs: decoding must restart there at the
    /// latest, since logits of positions already in the cache are not kept.
    pub fn first_read(&self) -> usize {
        self.reads
            .iter()
            .map(|r| r.pos)
            .min()
            .unwrap_or(self.tokens.len())
    }
}

/// Orders items depth-first over their prefix tree and folds prefix items into the job that
/// extends them. Items must have `1 <= first < tokens.len()`.
pub fn plan(items: &[ScoreItem]) -> Vec<Job> {
    let decode_seq = |i: usize| &items[i].tokens[..items[i].tokens.len() - 1];
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| decode_seq(a).cmp(decode_seq(b)).then(a.cmp(&b)));

    let mut jobs: Vec<Job> = Vec::new();
    let mut pending: Vec<Read> = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        let item = &items[i];
        for pos in item.first - 1..item.tokens.len() - 1 {
            pending.push(Read {
                item: i,
                index: pos + 1 - item.first,
                pos,
                token: item.tokens[pos + 1],
            });
        }
        let absorbed = order
            .get(k + 1)
            .is_some_and(|&next| decode_seq(next).starts_with(decode_seq(i)));
        if !absorbed {
            let mut reads = std::mem::take(&mut pending);
            reads.sort_by_key(|r| (r.pos, r.item, r.index));
            jobs.push(Job {
                tokens: decode_seq(i).to_vec(),
                reads,
            });
        }
    }
    jobs
}

/// Length of the common prefix of two token sequences.
pub fn common_prefix(a: &[i32], b: &[i32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(tokens: &[i32], first: usize) -> ScoreItem {
        ScoreItem {
            tokens: tokens.to_vec(),
            first,
        }
    }

    #[test]
    fn shared_context_single_token_targets_make_one_job() {
        let items = vec![
            item(&[1, 2, 3, 10], 3),
            item(&[1, 2, 3, 11], 3),
            item(&[1, 2, 3, 12], 3),
        ];
        let jobs = plan(&items);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].tokens, vec![1, 2, 3]);
        let tokens: Vec<i32> = jobs[0].reads.iter().map(|r| r.token).collect();
        assert_eq!(tokens, vec![10, 11, 12]);
        assert!(jobs[0].reads.iter().all(|r| r.pos == 2));
    }

    #[test]
    fn jobs_follow_depth_first_order_and_every_target_token_is_read_once() {
        let items = vec![
            item(&[5, 6, 7, 8], 2),
            item(&[1, 2, 3, 4, 9], 3),
            item(&[1, 2, 3], 2),
            item(&[1, 2, 4, 4], 3),
        ];
        let jobs = plan(&items);
        let seqs: Vec<Vec<i32>> = jobs.iter().map(|j| j.tokens.clone()).collect();
        // [1,2] (item 2) is a prefix of [1,2,3,4] (item 1) and is folded into it.
        assert_eq!(seqs, vec![vec![1, 2, 3, 4], vec![1, 2, 4], vec![5, 6, 7]]);
        let mut count = vec![0; items.len()];
        for job in &jobs {
            for r in &job.reads {
                assert_eq!(items[r.item].tokens[r.pos + 1], r.token);
                assert!(r.pos < job.tokens.len());
                count[r.item] += 1;
            }
        }
        assert_eq!(count, vec![2, 2, 1, 1]);
        assert_eq!(jobs[0].first_read(), 1);
    }

    #[test]
    fn identical_items_share_a_job() {
        let items = vec![item(&[1, 2, 3], 1), item(&[1, 2, 3], 1)];
        let jobs = plan(&items);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].reads.len(), 4);
    }

    #[test]
    fn common_prefix_counts_equal_leading_tokens() {
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4]), 2);
        assert_eq!(common_prefix(&[], &[1]), 0);
        assert_eq!(common_prefix(&[1, 2], &[1, 2, 3]), 2);
    }
}
