//! The pure rules of `group.rs`: first voters and contradictions.

use super::*;

fn n(s: &str) -> NodeName {
    NodeName::parse(s).expect("a node name")
}

fn ns(v: &[&str]) -> Vec<NodeName> {
    v.iter().map(|s| n(s)).collect()
}

/// A probe answer: a core (or not) with these initial voters, holding
/// `auth`'s group with these voters (none: no group).
fn answer(core: bool, initial: &[&str], voters: &[&str]) -> pb::ProbeReply {
    pb::ProbeReply {
        core,
        initial: initial.iter().map(|s| (*s).to_owned()).collect(),
        groups: vec![pb::Group {
            shard: "auth".into(),
            voters: voters.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }],
        follows: Vec::new(),
    }
}

#[test]
fn seeds_start_once_every_seed_answered_with_the_same_set_and_no_group() {
    let seeds = Bootstrap::Seeds(ns(&["a@h", "b@h", "c@h"]));
    let all = ["a@h", "b@h", "c@h"];
    let me = n("a@h");
    let one = vec![(n("b@h"), answer(true, &all, &[]))];
    assert_eq!(
        first_voters_of(&me, &seeds, &[], &one, "auth"),
        Err("waiting for c@h".into()),
        "a seed not reached may hold a group"
    );
    let both = vec![
        (n("b@h"), answer(true, &all, &[])),
        (n("c@h"), answer(true, &all, &[])),
    ];
    assert_eq!(
        first_voters_of(&me, &seeds, &[], &both, "auth"),
        Ok(ns(&all))
    );
    let held = vec![
        (n("b@h"), answer(true, &all, &[])),
        (n("c@h"), answer(true, &all, &["c@h"])),
    ];
    assert!(first_voters_of(&me, &seeds, &[], &held, "auth").is_err());
    let other_set = vec![
        (n("b@h"), answer(true, &all, &[])),
        (n("c@h"), answer(true, &["c@h", "d@h"], &[])),
    ];
    assert!(first_voters_of(&me, &seeds, &[], &other_set, "auth").is_err());
}

#[test]
fn a_seed_that_is_a_replicant_is_not_a_voter_but_a_listed_one_blocks() {
    let all = ["a@h", "b@h", "c@h"];
    let me = n("a@h");
    let probes = vec![
        (n("b@h"), answer(true, &all, &[])),
        (n("c@h"), answer(false, &all, &[])),
    ];
    let seeds = Bootstrap::Seeds(ns(&all));
    assert_eq!(
        first_voters_of(&me, &seeds, &[], &probes, "auth"),
        Ok(ns(&["a@h", "b@h"]))
    );
    assert!(first_voters_of(&me, &Bootstrap::CoreNodes, &ns(&all), &probes, "auth").is_err());
}

#[test]
fn nodes_listing_the_others_as_seeds_agree_and_an_unlisted_core_waits() {
    let me = n("a@h");
    let seeds = Bootstrap::Seeds(ns(&["b@h", "c@h"]));
    assert_eq!(
        initial_of(&me, &seeds, &[]),
        Some(ns(&["a@h", "b@h", "c@h"]))
    );
    let listed = ns(&["b@h", "c@h"]);
    assert!(first_voters_of(&me, &Bootstrap::CoreNodes, &listed, &[], "auth").is_err());
    assert_eq!(initial_of(&me, &Bootstrap::Alone, &listed), None);
}

#[test]
fn core_nodes_contradict_a_group_unless_they_are_its_voters_give_or_take_this_core() {
    let me = n("d@h");
    let running = ns(&["a@h", "b@h", "c@h"]);
    let list = |v: &[&str]| ns(v);
    let check = |listed: &[NodeName]| {
        contradiction_of(&me, &Bootstrap::CoreNodes, listed, "auth", &running)
    };
    assert_eq!(check(&list(&["a@h", "b@h", "c@h"])), None);
    assert_eq!(check(&list(&["a@h", "b@h", "c@h", "d@h"])), None);
    assert!(check(&list(&["a@h", "d@h"])).is_some());
    assert!(check(&list(&["a@h", "b@h", "c@h", "e@h"])).is_some());
    let seeds = Bootstrap::Seeds(ns(&["x@h"]));
    assert_eq!(
        contradiction_of(&me, &seeds, &[], "auth", &running),
        None,
        "seeds never contradict: the core joins"
    );
}
