//! OHTTP (RFC 9458) and Binary HTTP (RFC 9292) (`NET-ohttp`): the RFC 9458 Appendix A example
//! byte for byte on the gateway side, round trips on the client side, and refusals of what
//! does not parse or decrypt.

use mimi_net::ohttp::{
    BinaryRequest, BinaryResponse, GatewayKey, KeyConfig, OhttpError, encapsulate_request,
};
use proptest::prelude::*;

fn h(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// RFC 9458 Appendix A (data, copied with its source noted).
const SK: &str = "3c168975674b2fa8e465970b79c8dcf09f1c741626480bd4c6162fc5b6a98e1a";
const CONFIG: &str = "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e
                      79815500080001000100010003";
const REQUEST: &str = "00034745540568747470730b6578616d706c652e636f6d012f";
const ENC_REQUEST: &str = "010020000100014b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad1
                           9dec96c208b4726374e469135906992e1268c594d2a10c695d858c40a026e796
                           5e7d86b83dd440b2c0185204b4d63525";
const RESPONSE: &str = "0140c8";
const RESPONSE_NONCE: &str = "c789e7151fcba46158ca84b04464910d";
const ENC_RESPONSE: &str = "c789e7151fcba46158ca84b04464910d86f9013e404feea014e7be4a441f234f
                            857fbd";

#[test]
fn net_ohttp_rfc9458_appendix_a_example() {
    let key = GatewayKey::from_secret(1, &h(SK)).unwrap();
    // The key configuration, and `application/ohttp-keys` around it.
    assert_eq!(key.config().encode(), h(CONFIG));
    assert_eq!(KeyConfig::decode(&h(CONFIG)).unwrap(), *key.config());
    let list = KeyConfig::encode_list(std::slice::from_ref(key.config()));
    assert_eq!(&list[..2], &(h(CONFIG).len() as u16).to_be_bytes());
    assert_eq!(
        KeyConfig::decode_list(&list).unwrap(),
        vec![key.config().clone()]
    );
    // The Binary HTTP request: GET https://example.com/ (empty trailing sections left out).
    let req = BinaryRequest::decode(&h(REQUEST)).unwrap();
    assert_eq!(req, BinaryRequest::get("https://example.com/").unwrap());
    assert_eq!(req.encode(), h(REQUEST));
    // The gateway decapsulates the example's request and answers with its response bytes.
    let (plain, keys) = key.decapsulate(&h(ENC_REQUEST)).unwrap();
    assert_eq!(plain, h(REQUEST));
    let resp = BinaryResponse {
        status: 200,
        ..BinaryResponse::default()
    };
    assert_eq!(resp.encode(), h(RESPONSE));
    assert_eq!(BinaryResponse::decode(&h(RESPONSE)).unwrap(), resp);
    assert_eq!(
        keys.seal_with_nonce(&h(RESPONSE), &h(RESPONSE_NONCE))
            .unwrap(),
        h(ENC_RESPONSE)
    );
    // A changed byte anywhere in the request does not decrypt.
    let mut bad = h(ENC_REQUEST);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(key.decapsulate(&bad), Err(OhttpError::Decrypt(_))));
    // Another key ID or an AEAD the configuration does not list is refused.
    let mut other = h(ENC_REQUEST);
    other[0] = 2;
    assert!(matches!(
        key.decapsulate(&other),
        Err(OhttpError::Unsupported(_))
    ));
    let mut other = h(ENC_REQUEST);
    other[6] = 2;
    assert!(matches!(
        key.decapsulate(&other),
        Err(OhttpError::Unsupported(_))
    ));
}

#[test]
fn net_ohttp_client_and_gateway_round_trip() {
    let key = GatewayKey::derive(7, b"input keying material of at least 32 bytes").unwrap();
    let again = GatewayKey::derive(7, b"input keying material of at least 32 bytes").unwrap();
    assert_eq!(
        key.config(),
        again.config(),
        "DeriveKeyPair is deterministic"
    );
    let req = BinaryRequest::get("https://c.example/v1/assets/abc?x=1").unwrap();
    assert_eq!(req.path, "/v1/assets/abc?x=1");
    assert_eq!(req.url(), "https://c.example/v1/assets/abc?x=1");
    let (enc_req, client_keys) = encapsulate_request(key.config(), &req.encode()).unwrap();
    let (plain, gw_keys) = key.decapsulate(&enc_req).unwrap();
    assert_eq!(BinaryRequest::decode(&plain).unwrap(), req);
    let resp = BinaryResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        content: vec![7; 5000],
    };
    let enc_resp = gw_keys.seal(&resp.encode()).unwrap();
    let opened = client_keys.open(&enc_resp).unwrap();
    assert_eq!(BinaryResponse::decode(&opened).unwrap(), resp);
    // Another exchange's keys do not open it.
    let (_, other) = encapsulate_request(key.config(), &req.encode()).unwrap();
    assert!(other.open(&enc_resp).is_err());
    // Bad input: not https, truncated, uppercase field names, nonzero padding.
    assert!(BinaryRequest::get("http://c.example/x").is_err());
    assert!(BinaryRequest::decode(&[0, 3, b'G']).is_err());
    assert!(
        BinaryResponse::decode(&[1, 0x40, 0x63]).is_err(),
        "status 99"
    );
    let mut upper = BinaryResponse {
        status: 404,
        headers: vec![("x".into(), "y".into())],
        content: vec![],
    }
    .encode();
    let i = upper.iter().position(|b| *b == b'x').unwrap();
    upper[i] = b'X';
    assert!(BinaryResponse::decode(&upper).is_err());
    let mut padded = resp.encode();
    padded.extend_from_slice(&[0, 0, 0]);
    assert_eq!(BinaryResponse::decode(&padded).unwrap(), resp);
    padded.push(1);
    assert!(BinaryResponse::decode(&padded).is_err());
    assert!(KeyConfig::decode_list(&[0, 5, 1, 0]).is_err());
}

proptest! {
    #[test]
    fn net_ohttp_binary_http_round_trips_and_decoders_never_panic(
        status in 200u16..600, content in proptest::collection::vec(any::<u8>(), 0..300),
        path in "/[a-z0-9/]{0,20}", junk in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let r = BinaryResponse { status, headers: vec![("a".into(), "b".into())], content: content.clone() };
        prop_assert_eq!(BinaryResponse::decode(&r.encode()).unwrap(), r);
        let q = BinaryRequest { content, ..BinaryRequest::get(&format!("https://h.example{path}")).unwrap() };
        let q = if q.path.is_empty() { BinaryRequest { path: "/".into(), ..q } } else { q };
        prop_assert_eq!(BinaryRequest::decode(&q.encode()).unwrap(), q);
        let _ = BinaryRequest::decode(&junk);
        let _ = BinaryResponse::decode(&junk);
        let _ = KeyConfig::decode_list(&junk);
        let key = GatewayKey::derive(1, b"input keying material of at least 32 bytes").unwrap();
        let _ = key.decapsulate(&junk);
    }
}
