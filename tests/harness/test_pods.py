"""How a rendered container becomes a local process."""

from pathlib import Path

import pytest

from local_stack import manifests
from local_stack.manifests import Container, ManifestError, Workload
from local_stack.pods import PodRuntime, expand_references, plan_pods


def workload(args, env=(), ports=None, replicas=1):
    container = Container(
        name="app",
        command=("python3",),
        args=tuple(args),
        env=tuple(env),
        ports=ports if ports is not None else {"http": 8080},
        readiness=None,
    )
    return Workload("web", "ns", replicas, {"app": "web"}, (container,))


RUNTIME = PodRuntime(
    bin_dirs=[Path("/usr/bin")], path_map={"/opt/image/models": Path("/local/models")}, pod_env={}
)


def test_each_replica_gets_its_own_free_port_passed_through_the_port_flag():
    pods = plan_pods(workload(["--port=8080", "--verbose"], replicas=2))
    assert [p.name for p in pods] == ["web-0", "web-1"]
    ports = [p.port("http") for p in pods]
    assert len(set(ports)) == 2
    argv, _ = RUNTIME.argv_and_env(pods[1])
    assert argv[1:] == [f"--port={ports[1]}", "--verbose"]


def test_a_port_given_in_two_words_or_in_a_port_env_variable_is_remapped():
    [pod] = plan_pods(workload(["--port", "8080"]))
    argv, _ = RUNTIME.argv_and_env(pod)
    assert argv[1:] == ["--port", str(pod.port(8080))]
    [pod] = plan_pods(workload([], env=[("APP_PORT", "8080")]))
    _, env = RUNTIME.argv_and_env(pod)
    assert env["APP_PORT"] == str(pod.port("http"))


def test_a_port_the_process_is_not_told_about_is_an_error():
    [pod] = plan_pods(workload(["--listen=:8080"]))
    with pytest.raises(ManifestError, match="container port 8080 is not passed"):
        RUNTIME.argv_and_env(pod)


def test_image_paths_are_rewritten_to_the_local_folder():
    [pod] = plan_pods(
        workload(["--port=8080", "--model-path=/opt/image/models/m.joblib", "/opt/image/other"])
    )
    argv, _ = RUNTIME.argv_and_env(pod)
    assert "--model-path=/local/models/m.joblib" in argv
    assert "/opt/image/other" in argv


def test_variable_references_expand_like_kubernetes():
    assert expand_references("--user=$(USER_ID)", {"USER_ID": "u7"}) == "--user=u7"
    assert expand_references("$(MISSING)", {}) == "$(MISSING)"


def test_secrets_given_to_the_stack_fill_env_and_volumes_and_an_empty_dir_is_the_pods_own(
    tmp_path,
):
    container = Container(
        name="app",
        command=("python3",),
        args=("--port=8080", "--token-file=/etc/app/token", "--state=/tmp/state.json"),
        env=(),
        ports={"http": 8080},
        readiness=None,
        mounts={"/etc/app": "token", "/tmp": "tmp"},
        secret_env=(("API_KEY_VALUE", "api", "key", False), ("EXTRA", "absent", "k", True)),
    )
    web = Workload(
        "web",
        "ns",
        1,
        {},
        (container,),
        secret_volumes={"token": "webhook"},
        empty_dir_volumes=frozenset({"tmp"}),
    )
    runtime = PodRuntime(
        bin_dirs=[Path("/usr/bin")],
        path_map={},
        pod_env={},
        mounts_dir=tmp_path,
        secrets={"ns": {"api": {"key": "from-the-secret"}, "webhook": {"token": "t" * 32}}},
        secret_volumes={"web": web.secret_volumes},
        empty_dir_volumes={"web": web.empty_dir_volumes},
    )
    [pod] = plan_pods(web)
    argv, env = runtime.argv_and_env(pod)
    assert env["API_KEY_VALUE"] == "from-the-secret"
    assert "EXTRA" not in env  # optional, and not given
    token_file = Path(argv[2].partition("=")[2])
    assert token_file == tmp_path / "web-0" / "token" / "token"
    assert token_file.read_text() == "t" * 32
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert argv[3] == f"--state={tmp_path / 'web-0' / 'tmp'}/state.json"

    without = PodRuntime(
        bin_dirs=[Path("/usr/bin")],
        path_map={},
        pod_env={},
        mounts_dir=tmp_path,
        secret_volumes={"web": web.secret_volumes},
    )
    with pytest.raises(ManifestError, match="needs Secret webhook in namespace ns, which the"):
        without.argv_and_env(pod)
    # A Secret of another namespace is not the pod's, as on a cluster.
    elsewhere = PodRuntime(
        bin_dirs=[Path("/usr/bin")],
        path_map={},
        pod_env={},
        mounts_dir=tmp_path,
        secrets={"other": {"api": {"key": "x"}, "webhook": {"token": "t" * 32}}},
        secret_volumes={"web": web.secret_volumes},
    )
    with pytest.raises(ManifestError, match="needs Secret webhook in namespace ns"):
        elsewhere.argv_and_env(pod)


def test_a_claim_is_one_folder_for_every_pod_that_mounts_it_and_must_exist(tmp_path):
    container = Container(
        name="app",
        command=("python3",),
        args=("--port=8080", "--data=/var/lib/app/rows"),
        env=(),
        ports={"http": 8080},
        readiness=None,
        mounts={"/var/lib/app": "data"},
    )
    web = Workload("web", "ns", 2, {}, (container,), claim_volumes={"data": "web-data"})
    claim_folder = tmp_path / "claims" / "ns" / "web-data"
    runtime = PodRuntime(
        bin_dirs=[Path("/usr/bin")],
        path_map={},
        pod_env={},
        mounts_dir=tmp_path / "volumes",
        claim_volumes={"web": web.claim_volumes},
        claims={"ns/web-data": claim_folder},
    )
    first, second = plan_pods(web)
    for pod in (first, second):
        argv, _ = runtime.argv_and_env(pod)
        assert argv[2] == f"--data={claim_folder}/rows", "both replicas write to the claim"
    assert claim_folder.is_dir()

    unbound = PodRuntime(
        bin_dirs=[Path("/usr/bin")],
        path_map={},
        pod_env={},
        mounts_dir=tmp_path / "volumes",
        claim_volumes={"web": web.claim_volumes},
    )
    with pytest.raises(ManifestError, match="PersistentVolumeClaim web-data is not in namespace"):
        unbound.argv_and_env(first)


def test_claims_are_read_from_the_release_and_read_write_once_pod_is_refused():
    def claim(name, modes, keep=False):
        metadata = {"name": name, "namespace": "ns"}
        if keep:
            metadata["annotations"] = {"helm.sh/resource-policy": "keep"}
        return {
            "kind": "PersistentVolumeClaim",
            "metadata": metadata,
            "spec": {"accessModes": modes},
        }

    found = manifests.claims(
        [claim("a", ["ReadWriteOnce"], keep=True), claim("b", ["ReadWriteMany"])]
    )
    assert [(c.name, c.kept_on_uninstall) for c in found] == [("a", True), ("b", False)]
    with pytest.raises(ManifestError, match="ReadWriteOncePod is not modelled"):
        manifests.claims([claim("c", ["ReadWriteOncePod"])])
