//! The test control plane itself: both API servers answer, and they are separate
//! spaces (an object created in the WDS is not in the ITS).

use bindery_tests::envtest::Envtest;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

async fn client(kubeconfig: &std::path::Path) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wds_and_its_are_separate_real_api_servers() {
    let env = Envtest::start().expect("control plane starts");
    let wds = client(&env.wds.kubeconfig).await;
    let its = client(&env.its.kubeconfig).await;
    for c in [&wds, &its] {
        let names: Vec<String> = Api::<Namespace>::all(c.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        assert!(names.contains(&"default".to_string()), "{names:?}");
    }
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("only-in-wds".into());
    Api::<ConfigMap>::namespaced(wds.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    assert!(
        Api::<ConfigMap>::namespaced(wds, "default")
            .get_opt("only-in-wds")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        Api::<ConfigMap>::namespaced(its, "default")
            .get_opt("only-in-wds")
            .await
            .unwrap()
            .is_none()
    );
}
