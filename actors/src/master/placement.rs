//! Placement: which slaves hold a key. Kept behind one function so that a smarter policy
//! (racks, load, hash ranges for several master groups) can replace it.

use net::NodeId;
use rand::seq::IndexedRandom;
use rand::Rng;

/// Chooses up to `n` distinct slaves from `live`: first the `preferred` ones that are live, in
/// their order, then random others.
pub fn choose(live: &[&NodeId], preferred: &[NodeId], n: usize, rng: &mut impl Rng) -> Vec<NodeId> {
    let mut chosen: Vec<NodeId> = Vec::with_capacity(n);
    for node in preferred {
        if chosen.len() == n {
            break;
        }
        if live.contains(&node) && !chosen.contains(node) {
            chosen.push(node.clone());
        }
    }
    let rest: Vec<&NodeId> = live.iter().copied().filter(|node| !chosen.contains(node)).collect();
    let missing = n.saturating_sub(chosen.len());
    chosen.extend(rest.choose_multiple(rng, missing).map(|node| (*node).clone()));
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ids(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|n| NodeId(n.to_string())).collect()
    }

    #[test]
    fn placement_is_capped_by_live_slaves_and_distinct() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let all = ids(&["a", "b", "c"]);
        let live: Vec<&NodeId> = all.iter().collect();
        let chosen = choose(&live, &[], 5, &mut rng);
        assert_eq!(chosen.len(), 3);
        let mut sorted = chosen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 3);
    }

    #[test]
    fn preferred_live_slaves_come_first() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let all = ids(&["a", "b", "c", "d"]);
        let live: Vec<&NodeId> = all.iter().collect();
        let chosen = choose(&live, &ids(&["gone", "c"]), 2, &mut rng);
        assert_eq!(chosen[0], NodeId("c".into()));
        assert_eq!(chosen.len(), 2);
    }

    #[test]
    fn random_choices_spread_over_the_slaves() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let all = ids(&["a", "b", "c", "d", "e"]);
        let live: Vec<&NodeId> = all.iter().collect();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            seen.extend(choose(&live, &[], 1, &mut rng));
        }
        assert_eq!(seen.len(), 5);
    }
}
