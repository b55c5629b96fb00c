"""The HA pieces without daemons: each chain's scrape config and the members' flags."""

from generators.flags import build_ha_flag_files, read_args
from wardops.stack.ha import REPLICA_INSTANCE, member_scrape_config

GENERATED = {"global": {"scrape_interval": "5s"}, "scrape_configs": [
    {"job_name": "wardops_icmp", "static_configs": [{"targets": ["h:1", "h:2"], "labels": {"site": "s"}}]},
    {"job_name": "wardops_probe", "http_sd_configs": [{"url": "http://inv/api/v1/sd"}],
     "relabel_configs": [{"source_labels": ["__address__"], "target_label": "__param_target"},
                         {"target_label": "__address__", "replacement": "h:1"}]},
    {"job_name": "stack", "static_configs": [{"targets": ["vm:1", "am:2"]}]},
]}


def test_each_chain_scrapes_only_its_exporter_replica_under_one_instance_label():
    for n, mine in ((1, "h:1"), (2, "h:2")):
        jobs = {j["job_name"]: j for j in member_scrape_config(GENERATED, n, ["h:1", "h:2"])["scrape_configs"]}
        icmp = jobs["wardops_icmp"]
        assert icmp["static_configs"] == [{"targets": [mine], "labels": {"site": "s"}}]
        assert icmp["relabel_configs"] == [{"target_label": "instance", "replacement": REPLICA_INSTANCE}]
        assert jobs["wardops_probe"]["relabel_configs"][-1] == {"target_label": "__address__", "replacement": mine}
        assert jobs["stack"] == GENERATED["scrape_configs"][2]  # not an exporter job: untouched


def test_one_exporter_for_both_chains_keeps_its_instance():
    one = {"scrape_configs": [{"job_name": "wardops", "static_configs": [{"targets": ["h:1"]}]}]}
    for n in (1, 2):
        assert member_scrape_config(one, n, ["h:1", "h:1"]) == one


def test_second_exporter_given_on_the_command_line_goes_to_chain_two():
    one = {"scrape_configs": [{"job_name": "wardops", "static_configs": [{"targets": ["h:1"]}]}]}
    job = member_scrape_config(one, 2, ["h:1", "h:9"])["scrape_configs"][0]
    assert job["static_configs"] == [{"targets": ["h:9"]}]
    assert job["relabel_configs"] == [{"target_label": "instance", "replacement": REPLICA_INSTANCE}]


def test_ha_flag_files_wire_every_vmalert_to_every_alertmanager_and_the_peers_to_each_other():
    members = [{"victoria_metrics": "http://vm1:8428", "alertmanager": "http://am1:9093", "alertmanager_cluster": "am1:9094"},
               {"victoria_metrics": "http://vm2:8428", "alertmanager": "http://am2:9093", "alertmanager_cluster": "am2:9094"}]
    files = {k: read_args(v) for k, v in build_ha_flag_files(members, "# generated").items()}
    assert sorted(files) == [f"ha/{d}-{n}.args" for d in ("alertmanager", "vmagent", "vmalert") for n in (1, 2)]
    assert files["ha/vmalert-2.args"] == [
        "-notifier.url=http://am1:9093", "-notifier.url=http://am2:9093", "-datasource.url=http://vm2:8428",
        "-remoteWrite.url=http://vm2:8428", "-remoteRead.url=http://vm2:8428"]
    assert files["ha/alertmanager-1.args"][:3] == [
        "--cluster.listen-address=am1:9094", "--cluster.peer=am1:9094", "--cluster.peer=am2:9094"]
    assert files["ha/vmagent-1.args"] == ["-remoteWrite.url=http://vm1:8428/api/v1/write"]
