use std::collections::BTreeMap;

use fhir_search::index::CompositePart;

use crate::index_cleanly;
use crate::observation::{blood_pressure, glucose};

#[test]
fn component_code_value_quantity_pairs_code_and_value_of_each_component() {
    let index = index_cleanly(&blood_pressure());
    let param = "component-code-value-quantity";
    // group -> (codes, values)
    let mut groups: BTreeMap<i32, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for token in index.tokens.iter().filter(|t| t.param == param) {
        let part = token.composite.expect("composite rows say where they sit");
        assert_eq!(part.component, 0);
        groups
            .entry(part.group)
            .or_default()
            .0
            .push(token.code.clone().unwrap());
    }
    for quantity in index.quantities.iter().filter(|q| q.param == param) {
        let part = quantity.composite.unwrap();
        assert_eq!(part.component, 1);
        groups
            .entry(part.group)
            .or_default()
            .1
            .push(quantity.value.clone());
    }
    let pairs: Vec<_> = groups.into_values().collect();
    assert_eq!(
        pairs,
        vec![
            (vec!["8480-6".to_owned()], vec!["120".to_owned()]),
            (vec!["8462-4".to_owned()], vec!["80".to_owned()]),
        ]
    );
}

#[test]
fn code_value_quantity_needs_both_parts() {
    // The panel has no value of its own: no `code-value-quantity` rows at all.
    let index = index_cleanly(&blood_pressure());
    assert!(
        !index
            .tokens
            .iter()
            .any(|t| t.param == "code-value-quantity")
    );

    let index = index_cleanly(&glucose());
    let code: Vec<_> = index
        .tokens
        .iter()
        .filter(|t| t.param == "code-value-quantity")
        .map(|t| (t.code.as_deref(), t.composite))
        .collect();
    assert_eq!(
        code,
        vec![(
            Some("2339-0"),
            Some(CompositePart {
                component: 0,
                group: 0
            })
        )]
    );
    let value: Vec<_> = index
        .quantities
        .iter()
        .filter(|q| q.param == "code-value-quantity")
        .map(|q| (q.canonical_value.as_deref(), q.composite))
        .collect();
    assert_eq!(
        value,
        vec![(
            Some("15"),
            Some(CompositePart {
                component: 1,
                group: 0
            })
        )]
    );
}

#[test]
fn combo_groups_cover_the_observation_and_its_components() {
    let index = index_cleanly(&blood_pressure());
    let groups: std::collections::BTreeSet<i32> = index
        .quantities
        .iter()
        .filter(|q| q.param == "combo-code-value-quantity")
        .map(|q| q.composite.unwrap().group)
        .collect();
    // The Observation itself (group 0) has no value; each component has one.
    assert_eq!(groups.len(), 2);
    assert!(!groups.contains(&0));
}
