//! The AppDataUpdate and app_data_dictionary codecs against openmls' own encoding.

use mimi_room::state::ComponentOp;
use mimi_room_mlsrs::appdata::{
    decode_dictionary, decode_update, encode_dictionary, update_proposal,
};
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use std::collections::BTreeMap;

#[test]
fn app_data_update_bytes_equal_openmls() {
    for len in [0usize, 5, 63, 64, 300, 20000] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let om = AppDataUpdateProposal::update(0x0022, data.clone())
            .tls_serialize_detached()
            .unwrap();
        let rs = update_proposal(0x0022, &data);
        assert_eq!(rs.data(), om.as_slice(), "len {len}");
        assert_eq!(
            decode_update(&om).unwrap(),
            ComponentOp::Update(0x0022, data)
        );
    }
    let om = AppDataUpdateProposal::remove(0x0023)
        .tls_serialize_detached()
        .unwrap();
    assert_eq!(decode_update(&om).unwrap(), ComponentOp::Remove(0x0023));
    assert!(decode_update(&[0, 0x22, 3]).is_err(), "unknown op");
    assert!(decode_update(&[0, 0x22, 2, 0]).is_err(), "trailing byte");
}

#[test]
fn dictionary_bytes_equal_openmls() {
    let mut om = AppDataDictionary::new();
    let mut rs = BTreeMap::new();
    for (id, len) in [
        (0x0025u16, 70usize),
        (0x0022, 3),
        (0x0023, 0),
        (0xF000, 400),
    ] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        om.insert(id, data.clone());
        rs.insert(id, data);
    }
    let om_bytes = AppDataDictionaryExtension::new(om)
        .tls_serialize_detached()
        .unwrap();
    assert_eq!(encode_dictionary(&rs), om_bytes);
    assert_eq!(decode_dictionary(&om_bytes).unwrap(), rs);
    // Unsorted input is refused, as openmls refuses it.
    let mut bad = Vec::new();
    for id in [0x0023u16, 0x0022] {
        bad.extend_from_slice(&id.to_be_bytes());
        bad.push(0);
    }
    let mut framed = vec![bad.len() as u8];
    framed.extend_from_slice(&bad);
    assert!(decode_dictionary(&framed).is_err());
}
