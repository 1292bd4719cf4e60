//! One request's session, decided over plain data: which of the ids a
//! request carries is its session, what each id its response hands out
//! teaches, and when a session moves to the server that answered. The nginx
//! adapter gathers the ids and the table's answers and applies these.

use crate::config::Learn;
use crate::scanner::Flow;
use crate::store::{Learned, Lookup};

/// Most candidate ids a request may offer; later ones are ignored, so a
/// request with thousands of parameters costs a bounded number of lookups.
pub const MAX_CANDIDATES: usize = 4;

/// What was decided for a request, for `$sticky_session_status` and the learner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The request carried no id.
    None,
    /// The id was known and live.
    Hit,
    /// The id was unknown.
    Miss,
    /// The id had expired.
    Expired,
    /// The response handed out a new session, now recorded.
    New,
    /// The session's server was unusable; it now belongs to the one that answered.
    Rebound,
    /// The table did not know the id; its route named the server.
    Route,
}

impl Status {
    /// The variable value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::None => "NONE",
            Status::Hit => "HIT",
            Status::Miss => "MISS",
            Status::Expired => "EXPIRED",
            Status::New => "NEW",
            Status::Rebound => "REBOUND",
            Status::Route => "ROUTE",
        }
    }
}

/// A candidate id and what the table said of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// The id, borrowed from the request.
    pub id: &'a [u8],
    /// Its keyed hash.
    pub key: u64,
    /// The lookup's answer.
    pub found: Lookup,
}

impl Candidate<'_> {
    /// The request's status and, on a hit, its server.
    pub fn status(&self) -> (Status, Option<u32>) {
        match self.found {
            Lookup::Hit(server) => (Status::Hit, Some(server)),
            Lookup::Miss => (Status::Miss, None),
            Lookup::Expired => (Status::Expired, None),
        }
    }
}

/// Which of a request's ids is its session: the first candidate, across
/// the `lookup=` sources in order, that the table knows live; otherwise the
/// first candidate. A stale duplicate never hides a live session.
#[derive(Default)]
pub struct Choice<'a> {
    chosen: Option<Candidate<'a>>,
    tried: usize,
}

impl<'a> Choice<'a> {
    /// Considers the next candidate; `look` hashes and looks it up. Answers
    /// true when no more candidates are needed: a live one was found, or
    /// [`MAX_CANDIDATES`] were looked up.
    pub fn consider(&mut self, id: &'a [u8], look: impl FnOnce(&[u8]) -> (u64, Lookup)) -> bool {
        let (key, found) = look(id);
        self.tried += 1;
        let hit = matches!(found, Lookup::Hit(_));
        if hit || self.chosen.is_none() {
            self.chosen = Some(Candidate { id, key, found });
        }
        hit || self.tried == MAX_CANDIDATES
    }

    /// The request's session, if it offered any id.
    pub fn chosen(self) -> Option<Candidate<'a>> {
        self.chosen
    }
}

/// What a request brings to the learning of its response's ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learning {
    /// Key of the request's own id; 0 when it carried none.
    pub own: u64,
    /// The table knew the request's id when it arrived.
    pub known: bool,
    /// Key of the last id recorded from this response.
    pub last: u64,
    /// Ids this response may still record (`max_learn=`): a page carries its
    /// own session and perhaps a few more, while one that reflects user
    /// content can carry a new id every few bytes, each a table write.
    pub left: u32,
}

/// What one id found in a response teaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The id recorded just before: nothing new.
    Repeat,
    /// The request's own id, unknown to the table: the client chose it, so
    /// it is never recorded, even when the backend echoes it, and it is not
    /// the response's id.
    Echo,
    /// The request's own live session (its lookup refreshed it; a failover
    /// was rebound before the body): nothing to write, but it is the
    /// response's id.
    Own,
    /// A session to record for the server that answered.
    Record,
    /// A new id once the response has recorded its share: not recorded, and
    /// the scan ends, as at `max_scan=`.
    Enough,
}

impl Learning {
    /// The learning of a response to a request whose own id has key `own`
    /// (0: none), known to the table or not, that may record `max` ids.
    pub fn new(own: u64, known: bool, max: u32) -> Self {
        Learning {
            own,
            known,
            last: 0,
            left: max,
        }
    }

    /// Judges the id whose key is `key`; a `Record` becomes the last id.
    pub fn step(&mut self, key: u64) -> Step {
        if key == self.last {
            Step::Repeat
        } else if key == self.own {
            if self.known {
                Step::Own
            } else {
                Step::Echo
            }
        } else if self.left == 0 {
            Step::Enough
        } else {
            self.last = key;
            self.left -= 1;
            Step::Record
        }
    }

    /// Whether the response has recorded all the ids it may.
    pub fn is_full(&self) -> bool {
        self.left == 0
    }
}

/// Whether the scan goes on after the response's id was found.
pub fn after_id(learn: Learn) -> Flow {
    match learn {
        Learn::First => Flow::Break(()),
        Learn::All => Flow::Continue(()),
    }
}

/// The request's status once its response recorded a session: a request
/// that brought no live session now has a new one.
pub fn status_after(status: Status, outcome: Learned, known: bool) -> Status {
    if outcome == Learned::New && !known {
        Status::New
    } else {
        status
    }
}

/// The server a hit's session moves to: the one that answered, when it is
/// not the session's own (which was unusable).
pub fn rebind_to(status: Status, target: u32, served: Option<u32>) -> Option<u32> {
    match (status, served) {
        (Status::Hit, Some(s)) if s != target => Some(s),
        _ => None,
    }
}

/// Whether the page's repeats of the request's own id are skipped before
/// any work: with `learn=all` they teach nothing (the session is live on the
/// server that answered); with `learn=first` the own id is the response's id.
pub fn skips_own_id(learn: Learn, status: Status) -> bool {
    learn == Learn::All && matches!(status, Status::Hit | Status::Rebound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look<'t>(table: &'t [(&'t str, Lookup)]) -> impl Fn(&[u8]) -> (u64, Lookup) + 't {
        move |id| {
            let found = table
                .iter()
                .find(|(t, _)| t.as_bytes() == id)
                .map_or(Lookup::Miss, |&(_, f)| f);
            (id.len() as u64 * 1000 + u64::from(id[0]), found)
        }
    }

    #[test]
    fn which_candidate_wins() {
        let table = [("live", Lookup::Hit(7)), ("old", Lookup::Expired)];
        let cases: [(&[&str], Option<(&str, Status)>, usize); 6] = [
            (&[], None, 0),
            (&["new"], Some(("new", Status::Miss)), 1),
            (&["old"], Some(("old", Status::Expired)), 1),
            // A stale or unknown duplicate never hides a live session.
            (&["old", "new", "live"], Some(("live", Status::Hit)), 3),
            (&["live", "old"], Some(("live", Status::Hit)), 1),
            // At most MAX_CANDIDATES lookups: the fifth is never looked at.
            (&["a", "b", "c", "d", "live"], Some(("a", Status::Miss)), 4),
        ];
        for (ids, want, lookups) in cases {
            let mut choice = Choice::default();
            let mut n = 0;
            for id in ids {
                n += 1;
                if choice.consider(id.as_bytes(), look(&table)) {
                    break;
                }
            }
            let got = choice
                .chosen()
                .map(|c| (std::str::from_utf8(c.id).unwrap(), c.status().0));
            assert_eq!(got, want, "{ids:?}");
            assert_eq!(n, lookups, "lookups for {ids:?}");
        }
    }

    #[test]
    fn what_each_response_id_teaches() {
        // (request's key, known, ids found in order) -> steps
        let cases: [(u64, bool, &[u64], &[Step]); 5] = [
            (
                0,
                false,
                &[5, 5, 6],
                &[Step::Record, Step::Repeat, Step::Record],
            ),
            (5, true, &[5, 6], &[Step::Own, Step::Record]),
            (
                5,
                false,
                &[5, 6, 5],
                &[Step::Echo, Step::Record, Step::Echo],
            ),
            (
                5,
                true,
                &[6, 6, 5],
                &[Step::Record, Step::Repeat, Step::Own],
            ),
            (
                0,
                false,
                &[7, 8, 7],
                &[Step::Record, Step::Record, Step::Record],
            ),
        ];
        for (own, known, keys, want) in cases {
            let mut l = Learning::new(own, known, u32::MAX);
            let got: Vec<Step> = keys.iter().map(|&k| l.step(k)).collect();
            assert_eq!(got, want, "own {own} known {known} keys {keys:?}");
        }
    }

    #[test]
    fn a_response_records_a_bounded_number_of_ids() {
        // Ids alternating (each differs from the last) past the bound; the
        // request's own id and repeats still answer as before.
        for max in [1u32, 2, 32] {
            let mut l = Learning::new(1, true, max);
            let steps: Vec<Step> = (0..100u64).map(|i| l.step(2 + i % 2)).collect();
            let max = max as usize;
            let recorded = steps.iter().filter(|&&s| s == Step::Record).count();
            assert_eq!(recorded, max);
            assert!(steps[..max].iter().all(|&s| s == Step::Record));
            // The first new id past the bound ends the scan (a repeat of the
            // last recorded one still answers Repeat).
            assert_eq!(steps[max], Step::Enough);
            assert!(steps[max..]
                .iter()
                .all(|&s| s == Step::Enough || s == Step::Repeat));
            assert!(l.is_full());
            assert_eq!(l.step(1), Step::Own);
            assert_eq!(l.step(l.last), Step::Repeat);
        }
        // Repeats and the own id do not use up the share.
        let mut l = Learning::new(1, true, 2);
        let steps: Vec<Step> = [2u64, 2, 1, 2, 3, 3, 1, 4]
            .iter()
            .map(|&k| l.step(k))
            .collect();
        assert_eq!(
            steps,
            [
                Step::Record,
                Step::Repeat,
                Step::Own,
                Step::Repeat,
                Step::Record,
                Step::Repeat,
                Step::Own,
                Step::Enough
            ]
        );
    }

    #[test]
    fn learn_modes_and_statuses() {
        assert!(after_id(Learn::First).is_break());
        assert!(after_id(Learn::All).is_continue());
        assert_eq!(status_after(Status::None, Learned::New, false), Status::New);
        assert_eq!(status_after(Status::Miss, Learned::New, false), Status::New);
        assert_eq!(status_after(Status::Hit, Learned::New, true), Status::Hit);
        assert_eq!(
            status_after(Status::Miss, Learned::Kept, false),
            Status::Miss
        );
        assert!(skips_own_id(Learn::All, Status::Hit));
        assert!(skips_own_id(Learn::All, Status::Rebound));
        assert!(!skips_own_id(Learn::First, Status::Hit));
        assert!(!skips_own_id(Learn::All, Status::Miss));
    }

    #[test]
    fn rebind_only_a_hit_served_elsewhere() {
        let cases = [
            (Status::Hit, 1, Some(2), Some(2)),
            (Status::Hit, 1, Some(1), None),
            (Status::Hit, 1, None, None),
            (Status::Miss, 1, Some(2), None),
            (Status::None, 0, Some(2), None),
            (Status::Rebound, 1, Some(3), None),
        ];
        for (status, target, served, want) in cases {
            assert_eq!(
                rebind_to(status, target, served),
                want,
                "{status:?} {target} {served:?}"
            );
        }
    }
}
