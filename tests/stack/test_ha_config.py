"""The HA pieces without daemons: each chain's scrape config and the members' flags."""

from generators.flags import build_ha_flag_files, read_args
from wardops.stack.ha import shared_scrape_config

GENERATED = {"global": {"scrape_interval": "5s"}, "scrape_configs": [
    {"job_name": "wardops_icmp", "static_configs": [{"targets": ["h:1"], "labels": {"site": "a"}},
                                                    {"targets": ["h:2"], "labels": {"site": "b"}}]},
    {"job_name": "wardops_probe", "http_sd_configs": [{"url": "http://inv/api/v1/sd"}],
     "relabel_configs": [{"source_labels": ["__address__"], "target_label": "__param_target"},
                         {"target_label": "__address__", "replacement": "h:1"}]},
    {"job_name": "stack", "static_configs": [{"targets": ["vm:1", "am:2"]}]},
]}


def test_both_chains_read_the_generated_scrape_config_unchanged():
    # Every site's exporter in both chains, with its own `site`/`instance`: no relabelling, so the
    # two vmagents scrape each exporter at the same moment and store the same series.
    assert shared_scrape_config(GENERATED, []) == GENERATED
    assert shared_scrape_config(GENERATED, ["h:2"]) == GENERATED  # already a target: not added twice


def test_a_second_exporter_on_the_command_line_joins_the_exporter_jobs_of_both_chains():
    one = {"scrape_configs": [{"job_name": "wardops", "static_configs": [{"targets": ["h:1"]}]},
                              {"job_name": "stack", "static_configs": [{"targets": ["vm:1"]}]}]}
    got = shared_scrape_config(one, ["h:9"])
    assert got["scrape_configs"][0]["static_configs"] == [{"targets": ["h:1", "h:9"]}]
    assert got["scrape_configs"][1] == one["scrape_configs"][1]  # not an exporter job: untouched
    assert one["scrape_configs"][0]["static_configs"] == [{"targets": ["h:1"]}]  # the input is not changed


def test_ha_flag_files_wire_every_vmalert_to_every_alertmanager_and_the_peers_to_each_other():
    members = [{"victoria_metrics": "http://vm1:8428", "alertmanager": "http://am1:9093", "alertmanager_cluster": "am1:9094"},
               {"victoria_metrics": "http://vm2:8428", "alertmanager": "http://am2:9093", "alertmanager_cluster": "am2:9094"}]
    files = {k: read_args(v) for k, v in build_ha_flag_files(members, "# generated").items()}
    assert sorted(files) == [f"ha/{d}-{n}.args" for d in ("alertmanager", "victoria-metrics", "vmagent", "vmalert")
                             for n in (1, 2)]
    assert files["ha/vmalert-2.args"] == [
        "-notifier.url=http://am1:9093", "-notifier.url=http://am2:9093", "-datasource.url=http://vm2:8428",
        "-remoteWrite.url=http://vm2:8428", "-remoteRead.url=http://vm2:8428"]
    assert files["ha/alertmanager-1.args"][:3] == [
        "--cluster.listen-address=am1:9094", "--cluster.peer=am1:9094", "--cluster.peer=am2:9094"]
    for n in (1, 2):  # every vmagent writes every storage, and the storages keep one copy per second
        assert files[f"ha/vmagent-{n}.args"] == ["-remoteWrite.url=http://vm1:8428/api/v1/write",
                                                 "-remoteWrite.url=http://vm2:8428/api/v1/write"]
        assert files[f"ha/victoria-metrics-{n}.args"] == ["-dedup.minScrapeInterval=1s"]
