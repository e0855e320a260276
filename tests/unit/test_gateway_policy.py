"""The gateway's policy rules, without an engine: parsing, normalisation, the deny list, rewriting."""

import json

import pytest

from sandbox.gateway import policy
from sandbox.gateway.policy import Learner, PolicyDenied

LEARNER = Learner(sandbox_id="11111111-2222-3333-4444-555555555555", owner_id="7", lesson="images")


def create(**host):
    return policy.plan_container_create(LEARNER, {"Image": "busybox", "HostConfig": host})


# -- paths ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("target, path", [
    ("/v1.41/containers/json?all=1", "/containers/json"),
    ("/containers/json", "/containers/json"),
    ("/v1.40/images/127.0.0.1:5000/library/hello/json", "/images/127.0.0.1:5000/library/hello/json"),
    ("/v1.41/containers/abc/", "/containers/abc"),
    ("/v1.41/contain%65rs/json", "/containers/json"),
])
def test_paths_are_normalised_before_matching(target, path):
    assert policy.normalise_target(target)[0] == path


@pytest.mark.parametrize("target", [
    "//containers/json", "/v1.41//containers/json", "/containers/a%2Fb/json", "/containers/a%2fb/json",
    "/containers/../swarm/init", "/containers/./json", "/v1.23/containers/abc/start", "/containers/x%00/json",
    "containers/json", "/containers/%25/json",
])
def test_ambiguous_or_old_paths_are_refused(target):
    with pytest.raises(PolicyDenied):
        policy.normalise_target(target)


def test_a_repeated_query_parameter_is_refused_except_build_tags():
    with pytest.raises(PolicyDenied):
        policy.query_dict([("all", "1"), ("all", "0")])
    assert policy.query_dict([("t", "a"), ("t", "b")]) == {"t": "a"}


# -- strict JSON -----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    b'{"Image": "a", "Image": "b"}',
    b'{"Image": "a", "image": "b"}',
    b'{"HostConfig": {"Privileged": false, "privileged": true}}',
    b'{"HostConfig": {"Privileged": false, "PRIVILEGED": true}}',
    '{"HostConfig": {"SecurityOpt": [], "\u017fecurityOpt": ["seccomp=unconfined"]}}'.encode(),
    b'{"a": NaN}', b'{"a": 1} {"b": 2}', b'\xff\xfe{}', b'[1',
])
def test_duplicate_ambiguous_or_malformed_json_is_refused(raw):
    with pytest.raises(PolicyDenied):
        policy.loads_strict(raw)


def test_keys_are_matched_case_insensitively_like_the_engine():
    body = policy.loads_strict(b'{"image": "busybox", "hostconfig": {"privileged": true}}')
    with pytest.raises(PolicyDenied, match="--privileged is not allowed"):
        policy.plan_container_create(LEARNER, body)
    body = policy.loads_strict('{"Image": "x", "HostConfig": {"\u017fecurityOpt": ["seccomp=unconfined"]}}'.encode())
    with pytest.raises(PolicyDenied, match="unconfined"):
        policy.plan_container_create(LEARNER, body)


def test_refusals_carry_the_policy_prefix_the_cli_prints():
    with pytest.raises(PolicyDenied) as caught:
        create(Privileged=True)
    assert caught.value.status == 403
    assert caught.value.message == "denied by classroom policy: --privileged is not allowed"


# -- container create --------------------------------------------------------------------------------
@pytest.mark.parametrize("host, message", [
    ({"Privileged": True}, "--privileged"),
    ({"CapAdd": ["SYS_ADMIN"]}, "--cap-add"),
    ({"Devices": [{"PathOnHost": "/dev/sda"}]}, "--device"),
    ({"DeviceRequests": [{"Count": -1}]}, "device requests"),
    ({"DeviceCgroupRules": ["a *:* rwm"]}, "--device-cgroup-rule"),
    ({"VolumesFrom": ["other"]}, "--volumes-from"),
    ({"VolumeDriver": "x"}, "--volume-driver"),
    ({"Links": ["b:b"]}, "--link"),
    ({"Sysctls": {"net.ipv4.ip_forward": "1"}}, "--sysctl"),
    ({"MaskedPaths": ["/proc/kcore"]}, "masked"),
    ({"ReadonlyPaths": []}, None),
    ({"NetworkMode": "host"}, "--network=host"),
    ({"NetworkMode": "container:abc"}, "--network=container"),
    ({"PidMode": "host"}, "--pid=host"),
    ({"IpcMode": "host"}, "--ipc=host"),
    ({"IpcMode": "container:x"}, "--ipc=container:x"),
    ({"UTSMode": "host"}, "--uts=host"),
    ({"UsernsMode": "host"}, "--userns=host"),
    ({"CgroupnsMode": "host"}, "--cgroupns=host"),
    ({"Cgroup": "container:x"}, "--cgroup"),
    ({"CgroupParent": "/"}, "--cgroup-parent"),
    ({"SecurityOpt": ["seccomp=unconfined"]}, "unconfined"),
    ({"SecurityOpt": ["apparmor:unconfined"]}, "unconfined"),
    ({"SecurityOpt": ["label=disable"]}, "label=disable"),
    ({"SecurityOpt": ["no-new-privileges=false"]}, "no-new-privileges=false"),
    ({"Binds": ["/:/h"]}, "host paths"),
    ({"Binds": ["/var/run/docker.sock:/s"]}, "host paths"),
    ({"Binds": ["/data"]}, "anonymous"),
    ({"Mounts": [{"Type": "bind", "Source": "/", "Target": "/h"}]}, "bind"),
    ({"Mounts": [{"Type": "volume", "Source": "v", "Target": "/v",
                  "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"device": "/"}}}}]}, "driver"),
    ({"PortBindings": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}, "127.0.0.1 only"),
    ({"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "80"}]}}, "below 1024"),
    ({"PublishAllPorts": True}, "-P"),
    ({"Memory": 8 << 30}, "--memory"),
    ({"NanoCpus": 4_000_000_000}, "--cpus"),
    ({"PidsLimit": 100000}, "--pids-limit"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 1 << 20, "Hard": 1 << 20}]}, "nofile"),
    ({"Ulimits": [{"Name": "core", "Soft": 1, "Hard": 1}]}, "--ulimit core"),
    ({"ShmSize": 8 << 30}, "--shm-size"),
    ({"Tmpfs": {"/t": "size=10g,dev"}}, "--tmpfs option"),
    ({"StorageOpt": {"size": "100G"}}, "--storage-opt"),
    ({"OomKillDisable": True}, "--oom-kill-disable"),
    ({"Runtime": "runsc"}, "--runtime"),
    ({"LogConfig": {"Type": "syslog"}}, "--log-driver"),
    ({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 1000}}, "retry"),
    ({"CpuQuota": 1}, "--cpu-quota"),
    ({"KernelMemory": 1}, "--kernel-memory"),
    ({"SomethingNew": "x"}, "HostConfig.SomethingNew"),
])
def test_dangerous_host_config_is_refused(host, message):
    if message is None:  # an empty list is zero-valued: dropped, so the engine keeps its defaults
        assert "ReadonlyPaths" not in create(**host).body["HostConfig"]
        return
    with pytest.raises(PolicyDenied, match=message.replace("(", r"\(")):
        create(**host)


def test_create_forces_the_hardening_and_caps():
    plan = create(Memory=64 << 20, SecurityOpt=["no-new-privileges"], CapDrop=["NET_RAW"], PidsLimit=-1,
                  PortBindings={"8080/tcp": [{"HostIp": "", "HostPort": ""}]}, Tmpfs={"/scratch": "rw,size=1g"},
                  CpusetCpus="0", RestartPolicy={"Name": "unless-stopped"})
    host = plan.body["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["Memory"] == host["MemorySwap"] == 64 << 20
    assert host["PidsLimit"] == policy.Limits().pids_default
    assert host["NanoCpus"] == 1_000_000_000
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 1024}]
    assert host["LogConfig"]["Type"] == "json-file"
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert host["Tmpfs"] == {"/scratch": "rw,size=67108864"}
    assert host["NetworkMode"] == LEARNER.network and plan.uses_own_network
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert "Privileged" not in host


def test_owner_labels_are_overwritten():
    plan = policy.plan_container_create(LEARNER, {
        "Image": "x", "Labels": {"tutorial.sandbox": "someone-else", "TUTORIAL.owner": "1", "app": "web"}})
    labels = plan.body["Labels"]
    assert labels["tutorial.sandbox"] == LEARNER.sandbox_id and labels["tutorial.owner"] == "7"
    assert labels["tutorial.gateway"] == "learner" and labels["app"] == "web"
    assert "TUTORIAL.owner" not in labels


def test_named_volumes_and_networks_are_returned_for_ownership_checks():
    plan = create(Binds=["data:/data:ro"], NetworkMode="mynet",
                  Mounts=[{"Type": "volume", "Source": "cache", "Target": "/c"}])
    assert plan.volumes == ["cache", "data"] and plan.networks == ["mynet"] and not plan.uses_own_network


def test_exec_update_network_and_volume_rules():
    with pytest.raises(PolicyDenied, match="exec --privileged"):
        policy.plan_exec_create({"Cmd": ["sh"], "Privileged": True})
    with pytest.raises(PolicyDenied, match="--memory"):
        policy.plan_container_update({"Memory": 64 << 30})
    assert policy.plan_container_update({"Memory": 64 << 20})["MemorySwap"] == 64 << 20
    with pytest.raises(PolicyDenied, match="only bridge"):
        policy.plan_network_create(LEARNER, {"Name": "n", "Driver": "macvlan"})
    with pytest.raises(PolicyDenied, match="driver options"):
        policy.plan_network_create(LEARNER, {"Name": "n", "Options": {"com.docker.network.bridge.name": "docker0"}})
    body = policy.plan_network_create(LEARNER, {"Name": "n", "Labels": {"tutorial.sandbox": "x"}})
    assert body["Labels"]["tutorial.sandbox"] == LEARNER.sandbox_id and body["Driver"] == "bridge"
    assert body["Options"]["com.docker.network.bridge.host_binding_ipv4"] == "127.0.0.1"
    with pytest.raises(PolicyDenied, match="driver options"):
        policy.plan_volume_create(LEARNER, {"Name": "x", "DriverOpts": {"type": "none", "o": "bind", "device": "/"}})
    with pytest.raises(PolicyDenied, match="only local"):
        policy.plan_volume_create(LEARNER, {"Name": "x", "Driver": "nfs"})


def test_build_is_rewritten_to_the_classic_builder_without_network():
    pairs, tags = policy.plan_build(LEARNER, [("t", "app:1"), ("networkmode", "default"), ("memory", "0"),
                                              ("cgroupparent", ""), ("labels", '{"tutorial.owner": "1"}')])
    query = dict(pairs)
    assert query["networkmode"] == "none" and query["forcerm"] == "1" and query["pull"] == "0"
    assert json.loads(query["labels"])["tutorial.owner"] == "7"
    assert [str(t) for t in tags] == ["app:1"]
    for bad, message in [([("networkmode", "host")], "network=host"), ([("version", "2")], "BuildKit"),
                         ([("remote", "http://x")], "remote"), ([("cgroupparent", "/")], "cgroupparent"),
                         ([("t", "127.0.0.1:5000/library/x")], "own namespace")]:
        with pytest.raises(PolicyDenied, match=message):
            policy.plan_build(LEARNER, bad)


def test_registry_namespaces():
    ref = policy.parse_reference
    policy.check_pull(LEARNER, ref("127.0.0.1:5000/library/hello"))
    policy.check_pull(LEARNER, ref("127.0.0.1:5000/learner-7/app:v1"))
    policy.check_push(LEARNER, ref("127.0.0.1:5000/learner-7/app:v1"))
    for call, name in [(policy.check_pull, "busybox"), (policy.check_pull, "127.0.0.1:5000/learner-8/app"),
                       (policy.check_push, "127.0.0.1:5000/learner-8/app"), (policy.check_push, "127.0.0.1:5000/library/hello"),
                       (policy.check_push, "docker.io/library/app"), (policy.check_pull, "evil.example/x")]:
        with pytest.raises(PolicyDenied):
            call(LEARNER, ref(name))
    assert str(ref("busybox")) == "busybox:latest"
    assert ref("127.0.0.1:5000/library/hello:v2").path == "library/hello"


def test_owner_filters_are_forced_into_lists_events_and_prune():
    filters = json.loads(policy.owner_filters(LEARNER, '{"label": ["tutorial.sandbox=other"], "status": ["exited"]}'))
    assert filters["label"] == {"tutorial.sandbox=other": True, f"tutorial.sandbox={LEARNER.sandbox_id}": True,
                                "tutorial.gateway=learner": True}
    assert filters["status"] == {"exited": True}
    with pytest.raises(PolicyDenied):
        policy.owner_filters(LEARNER, '{"label": [], "label": []}')


# -- learner network addresses ----------------------------------------------------------------

def test_free_subnet_skips_every_subnet_in_use():
    taken = ["10.213.0.0/26", "10.213.0.64/26", "172.17.0.0/16", "not-a-subnet"]
    assert policy.free_subnet("10.213.0.0/16", 26, taken) == "10.213.0.128/26"


def test_free_subnet_skips_a_larger_network_overlapping_the_pool():
    assert policy.free_subnet("10.213.0.0/16", 26, ["10.213.0.0/24"]) == "10.213.1.0/26"


def test_an_exhausted_pool_is_a_clear_refusal():
    with pytest.raises(policy.PolicyDenied, match="no network addresses left"):
        policy.free_subnet("10.213.0.0/25", 26, ["10.213.0.0/26", "10.213.0.64/26"])


def test_learners_still_cannot_choose_a_subnet_themselves():
    with pytest.raises(policy.PolicyDenied, match="--subnet"):
        policy.plan_network_create(LEARNER, {"Name": "mine", "IPAM": {"Config": [{"Subnet": "10.0.0.0/8"}]}})


# -- host load outside the learner's cgroup: published ports, healthchecks, other counts ----------
def ports(first: int, count: int, host_first: int = 20000) -> dict:
    return {f"{first + i}/tcp": [{"HostIp": "", "HostPort": str(host_first + i)}] for i in range(count)}


def test_a_container_publishes_a_bounded_number_of_ports():
    limits = policy.Limits()
    assert create(PortBindings=ports(1, limits.ports_per_container_max)).published_ports == limits.ports_per_container_max
    # What `docker run -p 20000-21999:1-2000` sends: 2000 ports, one docker-proxy each.
    with pytest.raises(PolicyDenied, match=f"at most {limits.ports_per_container_max} ports, not 2000"):
        create(PortBindings=ports(1, 2000))
    # Two bindings of one container port are two processes too.
    with pytest.raises(PolicyDenied, match="at most"):
        create(PortBindings={"80/tcp": [{"HostPort": str(20000 + i)} for i in range(11)]})
    smaller = policy.Limits(ports_per_container_max=2)
    with pytest.raises(PolicyDenied, match="at most 2 ports"):
        policy.plan_container_create(LEARNER, {"Image": "x", "HostConfig": {"PortBindings": ports(1, 3)}}, smaller)


@pytest.mark.parametrize("bindings", [
    {"1-2000/tcp": [{"HostIp": "", "HostPort": ""}]},
    {"80/tcp": [{"HostIp": "", "HostPort": "20000-21999"}]},
])
def test_port_ranges_are_refused(bindings):
    with pytest.raises(PolicyDenied, match="port ranges are not allowed"):
        create(PortBindings=bindings)


def test_exposed_ports_are_bounded_and_never_ranges():
    with pytest.raises(PolicyDenied, match="ranges"):
        policy.plan_container_create(LEARNER, {"Image": "x", "ExposedPorts": {"1-65535/tcp": {}}})
    with pytest.raises(PolicyDenied, match="expose at most"):
        policy.plan_container_create(LEARNER, {"Image": "x", "ExposedPorts": {f"{p}/tcp": {} for p in range(1, 100)}})


def test_a_learner_publishes_a_bounded_number_of_ports_over_all_containers():
    limits = policy.Limits()
    policy.check_learner_ports(5, limits.ports_per_learner_max - 5, limits)
    policy.check_learner_ports(0, limits.ports_per_learner_max + 5, limits)  # no new port, no refusal
    with pytest.raises(PolicyDenied, match=f"at most {limits.ports_per_learner_max} ports in all"):
        policy.check_learner_ports(6, limits.ports_per_learner_max - 5, limits)
    # What the proxy counts: the engine's HostConfig.PortBindings of each existing container.
    assert policy.published_ports({"80/tcp": [{"HostPort": ""}], "81/tcp": [{}, {}], "82/tcp": None}) == 3
    assert policy.published_ports(None) == 0


SEC = 1_000_000_000


@pytest.mark.parametrize("check, message", [
    ({"Test": ["CMD", "true"], "Interval": 1_000_000}, "--health-interval must be between 1s"),
    ({"Test": ["CMD", "true"], "Interval": 999_999_999}, "--health-interval"),
    ({"Test": ["CMD", "true"], "Interval": -1}, "--health-interval"),
    ({"Test": ["CMD", "true"], "Interval": 2 * 3600 * SEC}, "and 3600s"),
    ({"Test": ["CMD", "true"], "Timeout": 1_000_000}, "--health-timeout"),
    ({"Test": ["CMD", "true"], "Timeout": 3600 * SEC}, "--health-timeout"),
    ({"Test": ["CMD", "true"], "StartPeriod": 1_000_000}, "--health-start-period"),
    ({"Test": ["CMD", "true"], "StartInterval": 1_000_000}, "--health-start-interval"),
    ({"Test": ["CMD", "true"], "Retries": 1000}, "--health-retries"),
    ({"Test": ["CMD", "true"], "Retries": -1}, "--health-retries"),
    ({"Test": ["CMD", "true"], "Interval": "1ms"}, "must be an integer"),
])
def test_healthchecks_probe_at_most_once_a_second(check, message):
    with pytest.raises(PolicyDenied, match=message):
        policy.plan_container_create(LEARNER, {"Image": "x", "Healthcheck": check})


def test_sensible_healthchecks_pass_and_zero_keeps_the_image_value():
    check = {"Test": ["CMD-SHELL", "true"], "Interval": 5 * SEC, "Timeout": 2 * SEC, "StartPeriod": 0,
             "Retries": 3}
    body = policy.plan_container_create(LEARNER, {"Image": "x", "Healthcheck": check}).body
    assert body["Healthcheck"] == check
    slower = policy.Limits(health_interval_min=10)
    with pytest.raises(PolicyDenied, match="between 10s"):
        policy.plan_container_create(LEARNER, {"Image": "x", "Healthcheck": check}, slower)


def test_an_image_healthcheck_of_one_millisecond_is_clamped_not_inherited():
    # The classic builder accepts HEALTHCHECK --interval=1ms; the engine uses it wherever the
    # create body has zero, so the body must carry the bounded value.
    body = policy.plan_container_create(LEARNER, {"Image": "x"}).body
    policy.bound_inherited_healthcheck(body, {"Test": ["CMD", "true"], "Interval": 1_000_000,
                                              "Timeout": 10 * 3600 * SEC, "Retries": 10_000})
    assert body["Healthcheck"] == {"Interval": SEC, "Timeout": 300 * SEC, "Retries": 10}
    # The learner's own (checked) values win; a disabled or absent check is left alone.
    body = policy.plan_container_create(LEARNER, {"Image": "x", "Healthcheck": {"Interval": 2 * SEC}}).body
    policy.bound_inherited_healthcheck(body, {"Test": ["CMD", "true"], "Interval": 1_000_000})
    assert body["Healthcheck"] == {"Interval": 2 * SEC}
    for image_check in (None, {"Test": ["NONE"], "Interval": 1}, {"Test": ["CMD", "true"], "Interval": 30 * SEC}):
        body = policy.plan_container_create(LEARNER, {"Image": "x"}).body
        policy.bound_inherited_healthcheck(body, image_check)
        assert "Healthcheck" not in body


@pytest.mark.parametrize("config, message", [
    ({"StopTimeout": 100_000}, "--stop-timeout must be between 0 and 60"),
    ({"StopTimeout": -1}, "--stop-timeout"),
    ({"Env": [f"V{i}=1" for i in range(1000)]}, "Env may hold at most"),
    ({"HostConfig": {"Dns": ["127.0.0.1"] * 100}}, "Dns may hold at most"),
    ({"HostConfig": {"ExtraHosts": ["a:127.0.0.1"] * 100}}, "ExtraHosts may hold at most"),
    ({"HostConfig": {"GroupAdd": ["1"] * 100}}, "GroupAdd may hold at most"),
    ({"HostConfig": {"ConsoleSize": [1 << 30, 80]}}, "console size"),
    ({"HostConfig": {"Tmpfs": {f"/t{i}": "" for i in range(40)}}}, "at most 16 volumes, mounts and tmpfs"),
    ({"HostConfig": {"Binds": [f"v{i}:/v{i}" for i in range(40)]}}, "at most 16"),
])
def test_other_durations_and_counts_are_bounded(config, message):
    with pytest.raises(PolicyDenied, match=message):
        policy.plan_container_create(LEARNER, {"Image": "x", **config})


def test_bounded_fields_within_the_limits_pass():
    body = policy.plan_container_create(LEARNER, {
        "Image": "x", "StopTimeout": 10, "Env": ["A=1"], "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"ConsoleSize": [24, 80], "Dns": ["10.0.0.1"], "Tmpfs": {"/a": ""}}}).body
    assert body["StopTimeout"] == 10 and body["HostConfig"]["ConsoleSize"] == [24, 80]
    assert body["ExposedPorts"] == {"80/tcp": {}}


def test_limits_come_from_settings(settings):
    from sandbox.gateway.server import gateway_limits

    settings.GATEWAY_LIMITS = {"ports_per_container_max": 3, "health_interval_min": 5.0}
    assert gateway_limits().ports_per_container_max == 3 and gateway_limits().health_interval_min == 5.0


def test_exec_detached_passes():
    # `docker exec -d` sends Detach in the create body (API 1.41's ExecConfig).
    assert policy.plan_exec_create({"Cmd": ["sh"], "Detach": True, "AttachStdout": False})["Detach"] is True


def test_what_a_learner_makes_carries_the_install_of_the_site_that_serves_them():
    learner = Learner(sandbox_id=LEARNER.sandbox_id, owner_id="7", lesson="images", install="classroom-1")
    plan = policy.plan_container_create(learner, {"Image": "busybox", "Labels": {"tutorial.install": "other"}})
    assert plan.body["Labels"]["tutorial.install"] == "classroom-1"
    assert policy.plan_network_create(learner, {"Name": "web"})["Labels"]["tutorial.install"] == "classroom-1"
    assert policy.plan_volume_create(learner, {"Name": "data"})["Labels"]["tutorial.install"] == "classroom-1"
