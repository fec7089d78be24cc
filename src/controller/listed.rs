//! An index fed by a watch: built anew by each (re)list, and answered only once a list is
//! complete, so a reader never takes a half-listed index for the truth. The step pods and the
//! Warning Events are kept this way.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::runtime::watcher;

/// An index `I` and the one being listed; see the module docs.
#[derive(Default)]
pub struct ListedIndex<I> {
    state: Mutex<State<I>>,
    synced: AtomicBool,
}

#[derive(Default)]
struct State<I> {
    live: I,
    /// The index of a (re)list in progress; replaces `live` when the list is complete.
    relist: Option<I>,
}

impl<I: Default> ListedIndex<I> {
    /// Feeds one watch event: `apply` adds or replaces an object (in the live index, or in the one
    /// being listed), `delete` removes one. Returns what `apply` returned, None for other events.
    pub fn observe<K, R>(
        &self,
        event: &watcher::Event<K>,
        apply: impl FnOnce(&mut I, &K) -> Option<R>,
        delete: impl FnOnce(&mut I, &K),
    ) -> Option<R> {
        let mut state = self.state.lock().expect("listed index lock");
        match event {
            watcher::Event::Init => {
                self.synced.store(false, Ordering::Relaxed);
                state.relist = Some(I::default());
                None
            }
            watcher::Event::InitApply(object) => apply(state.relist.as_mut()?, object),
            watcher::Event::InitDone => {
                state.live = state.relist.take().unwrap_or_default();
                self.synced.store(true, Ordering::Relaxed);
                None
            }
            watcher::Event::Apply(object) => apply(&mut state.live, object),
            watcher::Event::Delete(object) => {
                delete(&mut state.live, object);
                None
            }
        }
    }

    /// `read` of the live index; None until the watch's first list is complete and while it
    /// relists.
    pub fn read<T>(&self, read: impl FnOnce(&I) -> T) -> Option<T> {
        if !self.synced.load(Ordering::Relaxed) {
            return None;
        }
        Some(read(&self.state.lock().expect("listed index lock").live))
    }

    /// `read` of the live index as it is, listed or not.
    pub fn read_now<T>(&self, read: impl FnOnce(&I) -> T) -> T {
        read(&self.state.lock().expect("listed index lock").live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Names = ListedIndex<Vec<String>>;

    fn feed(index: &Names, event: watcher::Event<String>) -> Option<usize> {
        index.observe(
            &event,
            |names, name| {
                names.push(name.clone());
                Some(names.len())
            },
            |names, name| names.retain(|n| n != name),
        )
    }

    #[test]
    fn a_list_is_an_answer_only_once_complete_and_replaces_what_it_did_not_see() {
        let index = Names::default();
        assert_eq!(index.read(Vec::len), None);
        feed(&index, watcher::Event::Init);
        assert_eq!(feed(&index, watcher::Event::InitApply("a".into())), Some(1));
        assert_eq!(index.read(Vec::len), None, "half listed");
        feed(&index, watcher::Event::InitDone);
        assert_eq!(index.read(Vec::clone), Some(vec!["a".to_string()]));
        feed(&index, watcher::Event::Apply("b".into()));
        feed(&index, watcher::Event::Delete("a".into()));
        assert_eq!(index.read(Vec::clone), Some(vec!["b".to_string()]));

        feed(&index, watcher::Event::Init);
        assert_eq!(index.read(Vec::len), None, "a relist in progress is not an answer");
        assert_eq!(index.read_now(Vec::len), 1, "but the live index is still there");
        feed(&index, watcher::Event::InitApply("c".into()));
        feed(&index, watcher::Event::InitDone);
        assert_eq!(index.read(Vec::clone), Some(vec!["c".to_string()]));
    }
}
