//! Who is attached: the client index each IPC badge attached as, and each client's wake
//! capability (a slot of the component's), so a re-attachment frees the old one and
//! `geometry` answers the caller about its own attachment only.

use alloc::vec::Vec;

use crate::MAX_CLIENTS;

/// The attachments by badge, and the wake capability of each client index.
#[derive(Debug)]
pub struct Sessions<S: Copy> {
    badges: Vec<(u64, usize)>,
    wakes: [Option<S>; MAX_CLIENTS],
    spare: Vec<S>,
}

impl<S: Copy> Default for Sessions<S> {
    fn default() -> Self {
        Sessions {
            badges: Vec::new(),
            wakes: [None; MAX_CLIENTS],
            spare: Vec::new(),
        }
    }
}

impl<S: Copy> Sessions<S> {
    /// Records that `badge` attached as `client` with wake capability `wake`. Any earlier
    /// attachment of the badge, and any other badge's claim on `client`, are forgotten; the
    /// client's previous wake capability (to be deleted) is kept as a spare slot.
    pub fn attached(&mut self, badge: u64, client: usize, wake: S) {
        if let Some(old) = self.wakes.get_mut(client).and_then(|w| w.replace(wake)) {
            self.spare.push(old);
        }
        self.badges.retain(|&(b, c)| b != badge && c != client);
        self.badges.push((badge, client));
    }

    /// The client `badge` attached as, if any.
    pub fn client(&self, badge: u64) -> Option<usize> {
        self.badges
            .iter()
            .find(|(b, _)| *b == badge)
            .map(|&(_, c)| c)
    }

    /// A slot given back by [`Sessions::attached`] or [`Sessions::give_back`], to empty and
    /// use again (so a client attaching over and over does not use up the component's slots).
    pub fn spare(&mut self) -> Option<S> {
        self.spare.pop()
    }

    /// Keeps `slot` (emptied by the caller) for [`Sessions::spare`].
    pub fn give_back(&mut self, slot: S) {
        self.spare.push(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_badge_sees_its_own_attachment_and_old_wakes_are_recycled() {
        let mut s: Sessions<u64> = Sessions::default();
        assert_eq!(s.client(7), None);
        s.attached(7, 0, 100);
        s.attached(8, 1, 101);
        assert_eq!((s.client(7), s.client(8)), (Some(0), Some(1)));
        assert_eq!(s.spare(), None);
        // Badge 9 (the client restarted with a new badge) attaches over client 0's region.
        s.attached(9, 0, 102);
        assert_eq!(s.client(7), None, "the old badge lost it");
        assert_eq!(s.client(9), Some(0));
        assert_eq!(s.spare(), Some(100), "the old wake slot comes back");
        // A badge moving to another client drops its first one.
        s.attached(8, 2, 103);
        assert_eq!(s.client(8), Some(2));
        s.give_back(55);
        assert_eq!(s.spare(), Some(55));
        assert_eq!(s.spare(), None);
        // An index past the limit records the badge but keeps no wake.
        s.attached(1, MAX_CLIENTS, 9);
        assert_eq!(s.client(1), Some(MAX_CLIENTS));
    }
}
