use sorted_sched::{LrSchedule, OptimizerConfig, SamplerConfig};

use crate::toy::space;

#[test]
fn misspelt_keys_are_rejected_with_their_name() {
    let err = toml::from_str::<SamplerConfig>("[uniform]\nkk = 3").unwrap_err().to_string();
    assert!(err.contains("kk"), "{err}");
    let err = toml::from_str::<SamplerConfig>("[unifrom]").unwrap_err().to_string();
    assert!(err.contains("unifrom"), "{err}");
    let err = toml::from_str::<OptimizerConfig>("[adam]\nbeta_1 = 0.9").unwrap_err().to_string();
    assert!(err.contains("beta_1"), "{err}");
    let err = toml::from_str::<LrSchedule>("base = 0.1\ndecay = \"cosin\"").unwrap_err().to_string();
    assert!(err.contains("cosin"), "{err}");
}

#[test]
fn out_of_range_values_name_the_key() {
    let err = toml::from_str::<SamplerConfig>("[uniform]\nk = 0").unwrap().build(&space(), 0).unwrap_err();
    assert_eq!(err.key, "sampler.uniform.k");
    let err = toml::from_str::<SamplerConfig>("[weighted]\ndepth_weights = [1, 1]\nwidth_weights = [1, 1, 1]")
        .unwrap()
        .build(&space(), 0)
        .unwrap_err();
    assert_eq!(err.key, "sampler.weighted.depth_weights");
    let err = toml::from_str::<OptimizerConfig>("[sgd]\nmomentum = 1.5").unwrap().validate().unwrap_err();
    assert_eq!(err.key, "optimizer.sgd.momentum");
    let err = toml::from_str::<LrSchedule>("base = -1.0").unwrap().validate().unwrap_err();
    assert_eq!(err.key, "lr.base");
}

#[test]
fn issue_32_peers_follow_devices_and_a_conflict_names_both() {
    let train = |text: &str| toml::from_str::<sorted_sched::TrainConfig>(&format!("steps = 1\n{text}")).unwrap();
    assert_eq!(train("").peers(), 1);
    assert_eq!(train("peers = 3").peers(), 3);
    let placed = train("devices = [\"cuda:0\", \"cuda:1\"]");
    assert_eq!(placed.peers(), 2);
    placed.validate(1).unwrap();
    train("peers = 2\ndevices = [\"cpu\", \"cpu\"]").validate(1).unwrap();
    let err = train("peers = 3\ndevices = [\"cpu\", \"cpu\"]").validate(1).unwrap_err();
    assert_eq!(err.key, "train.peers");
    assert!(err.to_string().contains("train.devices"), "{err}");
    // Left out, neither is written back.
    assert!(!toml::to_string(&train("")).unwrap().contains("peers"));
}
