//! `harness load` fills a real cluster: every key is there afterwards with its value, through
//! the command line and through the library.

mod support;

use std::time::Duration;

use actors::client::Client;
use bytes::Bytes;
use harness::cluster::{Cluster, Target};
use harness::load::{load, LoadPlan};
use support::{nodes_bin, test_dir};

#[test]
fn a_load_writes_every_key_with_its_value() {
    let dir = test_dir("load");
    actix_rt::System::new().block_on(async move {
        let target = Target::Launch { nodes_bin: nodes_bin(), slaves: 3, replicas: 3, secure: false };
        let mut cluster = Cluster::new(target, &dir).expect("a cluster");
        let result = async {
            cluster.start().await.expect("the cluster starts");
            let config = cluster.client_config(Duration::from_secs(10));
            let plan = LoadPlan {
                config: config.clone(),
                keys: 3000,
                first: 500,
                value_size: 64,
                connections: 3,
                pipeline: 16,
            };
            let loaded = load(plan).await.expect("the load");
            assert_eq!(loaded.keys, 3000);
            let client = Client::start(config);
            let status = client.status().await.expect("a status");
            assert_eq!(status.keys, 3000, "every key is in the map: {status:?}");
            for index in [500u64, 1777, 3499] {
                let value = client.get(Bytes::from(format!("key{index}"))).await.expect("a read");
                let value = value.unwrap_or_else(|| panic!("key{index} was loaded"));
                assert_eq!(value.len(), 64);
                assert!(value.starts_with(format!("v{index}-").as_bytes()), "key{index} = {value:?}");
            }
            let outside = client.get(Bytes::from_static(b"key3500")).await.expect("a read");
            assert_eq!(outside, None, "nothing past the last key is written");
        }
        .await;
        cluster.stop().await;
        result
    });
}
