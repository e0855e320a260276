"""Importing Killercoda and Katacoda scenarios: what an instructor gets is a lesson that validates,
whose steps say what the scenario said, with every key, annotation and rewrite in IMPORT_REPORT.md.

The fixtures in fixtures/scenarios/ are written in both formats and cover every key and annotation
the importer knows. Scripts that need only a shell (setups that recreate files, checks and
solutions of plain steps) are run with the host's ``sh`` in a temporary home."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from lessons.loader import load_dirs
from lessons.scenarios.importer import REPORT_NAME, import_path
from lessons.scenarios.mapper import BASH_DELIMITER, FAILING_SOLUTION, run_with_bash
from lessons.scenarios.reader import ScenarioError
from lessons.scenarios.rewrites import Environment, rewrite_manifests, rewrite_script

FIXTURES = Path(__file__).parent / "fixtures" / "scenarios"
REPORT_LINE = re.compile(r"^(?P<file>[\w./-]+):(?P<line>\d+): (?P<kind>mapped|rewritten|reported|cannot-run|warning): (?P<reason>.+)$")


def _front(path: Path) -> tuple[dict, str]:
    text = path.read_text()
    _, meta, body = text.split("---\n", 2)
    return yaml.safe_load(meta), body


def _report(folder: Path) -> list[re.Match]:
    text = (folder / REPORT_NAME).read_text()
    block = text.split("```\n", 1)[1].rsplit("```", 1)[0]
    lines = [line for line in block.splitlines() if line.strip()]
    matches = [REPORT_LINE.match(line) for line in lines]
    assert all(matches), [line for line, match in zip(lines, matches) if not match]
    return matches


def _has(report: list[re.Match], file: str, kind: str, words: str, line: int | None = None) -> bool:
    return any(m["file"] == file and m["kind"] == kind and words in m["reason"] and (line is None or int(m["line"]) == line) for m in report)


def _sh(script: str, home: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={"HOME": str(home), "PATH": os.environ["PATH"], **env}, cwd=home, timeout=30)


@pytest.fixture(scope="module")
def docker_lesson(tmp_path_factory) -> Path:
    into = tmp_path_factory.mktemp("lessons")
    [result] = import_path(FIXTURES / "killercoda-docker", into)
    return result.folder


@pytest.fixture(scope="module")
def kubernetes_lesson(tmp_path_factory) -> Path:
    into = tmp_path_factory.mktemp("lessons")
    [result] = import_path(FIXTURES / "katacoda-kubernetes", into)
    return result.folder


@pytest.mark.parametrize("name", ["killercoda-docker", "katacoda-kubernetes", "killercoda-course"])
def test_an_imported_lesson_passes_the_lesson_validation(name, tmp_path):
    import_path(FIXTURES / name, tmp_path / "lessons")
    lessons, problems = load_dirs([tmp_path / "lessons"])
    assert problems == []
    assert lessons


# --- Killercoda ----------------------------------------------------------------------------------


def test_title_description_intro_steps_and_finish_map_to_the_lesson(docker_lesson):
    meta, intro = _front(docker_lesson / "lesson.md")
    assert meta["title"] == "Serve a page from a container"
    assert meta["summary"].startswith("Leave a note, then run")
    assert (meta["workspace"], meta["image"]) == ("docker", "docker")
    assert "Everything you write lives in ~ on this machine." in intro
    steps = sorted(p.name for p in (docker_lesson / "steps").iterdir())
    assert steps == ["01-leave-a-note.md", "02-run-the-web-server.md", "03-where-to-go-from-here.md", "04-finish.md"]
    finish_meta, finish_body = _front(docker_lesson / "steps" / "04-finish.md")
    assert finish_meta == {"title": "Finish"} and "Well done" in finish_body


def test_exec_becomes_run_blocks_and_details_become_hints_and_solution(docker_lesson):
    meta, body = _front(docker_lesson / "steps" / "01-leave-a-note.md")
    assert "```run\necho hello > $HOME/note.txt\n```" in body
    assert "`cat $HOME/note.txt`" in body and "{{" not in body  # inline exec in a sentence: inline code
    assert "<details>" not in body
    assert meta["hints"] == ["Use `echo` and a redirection."]
    assert meta["solution"] == "echo hello > $HOME/note.txt\n"
    meta2, body2 = _front(docker_lesson / "steps" / "02-run-the-web-server.md")
    assert meta2["hints"] == ["`docker ps`"]
    assert "```copy\ndocker run -d --name other -p 127.0.0.1:8081:8080 127.0.0.1:5000/library/busybox httpd -f -p 8080\n```" in body2
    assert "**Ctrl**+**C**" in body2 and "<br>" not in body2
    assert "Open the page (port 8080: open it from **Web preview** above the terminal) to see it." in body2


def test_verify_becomes_a_check_that_fails_with_feedback_then_passes_after_the_solution(docker_lesson, tmp_path):
    meta, _ = _front(docker_lesson / "steps" / "01-leave-a-note.md")
    before = _sh(meta["check"], tmp_path)
    assert before.returncode != 0 and "Not done yet: Leave a note" in before.stdout
    assert _sh(meta["solution"], tmp_path).returncode == 0
    assert _sh(meta["check"], tmp_path).returncode == 0


def test_assets_and_backgrounds_become_the_first_steps_setup(docker_lesson, tmp_path):
    meta, _ = _front(docker_lesson / "steps" / "01-leave-a-note.md")
    result = _sh(meta["setup"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "config" / "app.conf").read_text() == "greeting=hello\n"
    assert (tmp_path / "config" / "extra.conf").read_text() == "port=8080\n"  # the glob, expanded
    script = tmp_path / "opt" / "app" / "run.sh"  # /opt/app is not writable: moved under the home
    assert os.access(script, os.X_OK)
    assert script.read_text() == "#!/bin/sh\ncat $HOME/config/app.conf\n"
    assert (tmp_path / "work").is_dir()  # the intro's background
    assert _sh(str(script), tmp_path).stdout == "greeting=hello\n"


def test_docker_rewrites_ports_images_and_paths(docker_lesson):
    meta, body = _front(docker_lesson / "steps" / "02-run-the-web-server.md")
    assert "docker run -d --name web -p 127.0.0.1::8080 127.0.0.1:5000/library/busybox httpd -f -p 8080" in meta["solution"]
    report = _report(docker_lesson)
    assert _has(report, "step2/text.md", "rewritten", "-p 8080 -> -p 127.0.0.1::8080", 4)
    assert _has(report, "step2/text.md", "rewritten", "-p 8081:8080 -> -p 127.0.0.1:8081:8080", 10)
    assert _has(report, "step2/text.md", "rewritten", "tag '1.36' dropped", 10)
    assert _has(report, "step1/verify.sh", "rewritten", "/root -> $HOME", 2)
    assert _has(report, "step3/text.md", "reported", "image nginx is not in the classroom registry", 5)
    assert _has(report, "step2/text.md", "mapped", "web preview link to port 8080 -> text pointing at the Web preview", 13)


def test_what_cannot_run_is_reported_and_the_step_marked(docker_lesson):
    meta, body = _front(docker_lesson / "steps" / "03-where-to-go-from-here.md")
    assert body.startswith("> **Imported:** parts of this step cannot run in the classroom")
    assert "installs packages" in body.split("\n")[0]
    report = _report(docker_lesson)
    assert _has(report, "step3/text.md", "cannot-run", "apt-get install -y tree", 3)


def test_a_verify_without_a_solution_gets_a_failing_solution_and_a_report_line(docker_lesson, tmp_path):
    meta, _ = _front(docker_lesson / "steps" / "03-where-to-go-from-here.md")
    assert meta["solution"] == FAILING_SOLUTION
    result = _sh(meta["solution"], tmp_path)
    assert result.returncode != 0 and "no solution in the scenario" in result.stderr
    assert _has(_report(docker_lesson), "step3/text.md", "reported", "no solution in the scenario")


def test_the_report_names_unknown_keys_missing_files_foregrounds_and_the_licence(docker_lesson):
    report = _report(docker_lesson)
    assert _has(report, "index.json", "reported", "unknown key 'x-unknown-key'", 43)
    assert _has(report, "index.json", "reported", "unknown key 'hint' in step")
    assert _has(report, "index.json", "reported", "interface = ")
    assert _has(report, "index.json", "reported", "asset missing.txt is named but no file", 36)
    assert _has(report, "index.json", "reported", "foreground intro/foreground.sh", 8)
    assert _has(report, "index.json", "rewritten", "/opt/app -> $HOME/opt/app")
    assert _has(report, "index.json", "reported", "run it as `sh ~/opt/app/run.sh`", 35)
    assert _has(report, "LICENSE", "mapped", "licence LICENSE copied")
    assert (docker_lesson / "LICENSE").read_text().startswith("Copyright 2026 The Scenario Authors")


def test_every_key_of_index_json_is_in_the_report(docker_lesson, kubernetes_lesson):
    for folder, name in ((docker_lesson, "killercoda-docker"), (kubernetes_lesson, "katacoda-kubernetes")):
        report = (folder / REPORT_NAME).read_text()
        index = (FIXTURES / name / "index.json").read_text()
        for key in set(re.findall(r'"([\w-]+)"\s*:', index)) - {"file", "target", "chmod", "name", "port", "text", "details", "backend", "assets", "host01"}:
            assert key in report, f"{name}: key {key!r} is not in the report"


# --- Katacoda ------------------------------------------------------------------------------------


def test_katacoda_keys_and_the_editor_block_map_to_setup_and_solution(kubernetes_lesson, tmp_path):
    meta, _ = _front(kubernetes_lesson / "lesson.md")
    assert (meta["workspace"], meta["image"], meta["minutes"]) == ("kubernetes", "toolbox", 15)
    step, body = _front(kubernetes_lesson / "steps" / "01-apply-a-pod.md")
    assert step["solution"] == "kubectl apply -f $HOME/example/web.yaml\nkubectl wait --for=condition=Ready pod/web --timeout=90s\n"
    assert "kubectl get pod web -o jsonpath='{.status.phase}' | grep -q Running" in step["check"]
    assert "`~/example/web.yaml` (written for you when the step starts; open it from the **Editor** tab)" in body
    result = _sh(step["setup"], tmp_path, REGISTRY="registry.test:5000")
    assert result.returncode == 0, result.stderr
    pod = yaml.safe_load((tmp_path / "example" / "web.yaml").read_text())
    assert pod["spec"]["containers"][0]["image"] == "registry.test:5000/library/busybox"
    assert "namespace" not in pod["metadata"]
    assert pod["spec"]["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["spec"]["containers"][0]["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    service = yaml.safe_load((tmp_path / "service.yaml").read_text())
    assert "namespace" not in service["metadata"]


def test_katacoda_annotations_are_mapped_or_reported(kubernetes_lesson):
    _, body = _front(kubernetes_lesson / "steps" / "01-apply-a-pod.md")
    assert "```run\nkubectl apply -f $HOME/example/web.yaml\n```" in body
    assert "```run\nkubectl get pods --watch\n```" in body
    assert "```copy\necho done\n```" in body
    assert "Open it with `web.yaml`, then" in body
    assert "[[" not in body and "{{" not in body
    report = _report(kubernetes_lesson)
    assert _has(report, "step1.md", "reported", "`web.yaml`{{open}}", 17)
    assert _has(report, "step1.md", "reported", "{{exec T2}}", 21)
    assert _has(report, "step1.md", "mapped", "web preview address of port 80 -> text pointing at the Web preview, which lists the port once a Service", 27)
    assert "See the service at port 80 (open it from **Web preview** above the terminal) once it runs." in body
    assert _has(report, "step1.md", "rewritten", "`-n demo` removed", 19)
    assert _has(report, "step1.md", "cannot-run", "kubectl get nodes", 25)
    assert _has(report, "step1.md", "mapped", "editor block for web.yaml", 3)
    assert "`~/example/web.yaml` (written for you when the step starts; open it from the **Editor** tab):" in body
    assert _has(report, "index.json", "reported", "code step1-foreground.sh")
    assert _has(report, "index.json", "reported", "assets for client")
    assert _has(report, "index.json", "reported", "credits 'Someone Else'")
    assert _has(report, "index.json", "warning", "no LICENSE")
    assert _has(report, "step1-answer.md", "rewritten", "`-n demo` removed", 4)


def test_the_katacoda_quiz_becomes_a_quiz_step(kubernetes_lesson):
    meta, body = _front(kubernetes_lesson / "steps" / "02-questions.md")
    assert meta["type"] == "quiz" and ">>" not in body
    q1, q2, q3, q4 = meta["questions"]
    assert q1 == {"prompt": "Which command sends a manifest to the cluster?", "answer_text": ["kubectl apply"]}
    assert q2["answer_text"] == ["web"]
    assert q3["choices"] == ["Pod", "Dockerfile"] and q3["answer"] == "Pod" and "Service is right too" in q3["prompt"]
    assert q4 == {"prompt": "Where do containers of a pod run?", "choices": ["On one node", "On every node"], "answer": "On one node"}
    report = _report(kubernetes_lesson)
    assert _has(report, "step2.md", "reported", "=~= (answer contains) is approximated", 6)
    assert _has(report, "step2.md", "reported", "has 2 right choices", 9)


def test_cluster_scoped_commands_mark_the_step(kubernetes_lesson):
    _, body = _front(kubernetes_lesson / "steps" / "03-look-around.md")
    assert body.startswith("> **Imported:**") and "cluster-scoped" in body


# --- Courses and zips ----------------------------------------------------------------------------


def test_a_course_becomes_lessons_in_order_each_after_the_one_before(tmp_path):
    first, second = import_path(FIXTURES / "killercoda-course", tmp_path / "lessons", order=500)
    first_meta, _ = _front(first.folder / "lesson.md")
    second_meta, _ = _front(second.folder / "lesson.md")
    assert (first_meta["order"], second_meta["order"]) == (500, 501)
    assert second_meta["prerequisites"] == ["first"] and "prerequisites" not in first_meta
    assert (second.folder / "LICENSE").read_text().startswith("Course licence")  # from the course folder
    first_report, second_report = _report(first.folder), _report(second.folder)
    assert _has(first_report, "structure.json", "reported", "course item gone is named but has no index.json", 5)
    assert _has(second_report, "structure.json", "reported", "course item key 'title'")
    assert _has(second_report, "index.json", "reported", "step verify missing-verify.sh is named but missing")
    assert _has(first_report, "background.sh", "cannot-run", "sudo", 2)
    assert _has(first_report, "background.sh", "cannot-run", "no node01", 3)


def test_a_katacoda_pathway_becomes_lessons_in_its_order_and_reports_what_it_says(tmp_path):
    hello, images = import_path(FIXTURES / "katacoda-pathway", tmp_path / "lessons", order=600)
    assert (hello.folder.name, images.folder.name) == ("hello", "images")
    assert hello.variant == images.variant == "katacoda"
    hello_meta, _ = _front(hello.folder / "lesson.md")
    images_meta, _ = _front(images.folder / "lesson.md")
    assert (hello_meta["order"], images_meta["order"]) == (600, 601)
    assert images_meta["prerequisites"] == ["hello"] and "prerequisites" not in hello_meta
    assert (images.folder / "LICENSE").read_text().startswith("Pathway licence")
    lessons, problems = load_dirs([tmp_path / "lessons"])
    assert problems == [] and len(lessons) == 2
    report = _report(images.folder)
    pathway = "docker-basics-pathway.json"
    assert _has(report, pathway, "reported", "the pathway's title 'Docker basics': not mapped", 2)
    assert _has(report, pathway, "reported", "the pathway's description", 3)
    assert _has(report, pathway, "reported", "course item gone is named but has no index.json", 20)
    for key in ("pathway_id", "title", "description"):
        assert _has(report, pathway, "reported", f"course item key {key!r} for images", 14)
    # `id` names the folder when there is no `course_id`; both name it in the first course.
    assert not any(m["file"] == pathway and "'id'" in m["reason"] for m in _report(hello.folder))


def test_a_pathway_file_imports_like_its_folder_and_a_zip_of_it_too(tmp_path):
    source = FIXTURES / "katacoda-pathway"
    by_file = import_path(source / "docker-basics-pathway.json", tmp_path / "a")
    archive = tmp_path / "pathway.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in source.rglob("*"):
            zipped.write(path, Path("repo") / path.relative_to(source))
    by_zip = import_path(archive, tmp_path / "b")
    assert [r.folder.name for r in by_file] == [r.folder.name for r in by_zip] == ["hello", "images"]
    for one, other in zip(by_file, by_zip):
        assert (one.folder / "steps").is_dir()
        for path in one.folder.rglob("*.md"):
            if path.name != REPORT_NAME:
                assert (other.folder / path.relative_to(one.folder)).read_text() == path.read_text()


def test_a_folder_with_several_pathways_asks_for_one_and_a_pathway_without_courses_is_refused(tmp_path):
    source = tmp_path / "repo"
    shutil.copytree(FIXTURES / "katacoda-pathway", source)
    shutil.copy(source / "docker-basics-pathway.json", source / "other-pathway.json")
    with pytest.raises(ScenarioError, match="several pathways here .*docker-basics-pathway.json, other-pathway.json"):
        import_path(source, tmp_path / "out")
    (source / "other-pathway.json").write_text('{"title": "No courses"}')
    with pytest.raises(ScenarioError, match='other-pathway.json:1: expected "courses"'):
        import_path(source / "other-pathway.json", tmp_path / "out")
    assert not (tmp_path / "out" / "hello").exists()


def test_a_zip_imports_like_its_folder(tmp_path):
    archive = tmp_path / "scenario.zip"
    source = FIXTURES / "killercoda-docker"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in source.rglob("*"):
            zipped.write(path, Path("killercoda-docker") / path.relative_to(source))
    [from_zip] = import_path(archive, tmp_path / "a")
    [from_folder] = import_path(source, tmp_path / "b")
    for path in from_folder.folder.rglob("*.md"):
        if path.name != REPORT_NAME:
            assert (from_zip.folder / path.relative_to(from_folder.folder)).read_text() == path.read_text()


def test_a_zip_whose_members_leave_the_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../outside.txt", "x")
        zipped.writestr("index.json", "{}")
    with pytest.raises(ScenarioError, match="outside the folder"):
        import_path(archive, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()


def test_a_folder_that_is_no_scenario_is_refused(tmp_path):
    source = tmp_path / "source"
    (source / "a").mkdir(parents=True)
    (source / "b").mkdir()
    with pytest.raises(ScenarioError, match="no index.json"):
        import_path(source, tmp_path / "out")


# --- Rewrites, one by one ------------------------------------------------------------------------

DOCKER = Environment("docker")
KUBERNETES = Environment("kubernetes")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("docker run -d -p 8080:80 busybox", "docker run -d -p 127.0.0.1:8080:80 127.0.0.1:5000/library/busybox"),
        ("docker run -p 0.0.0.0:80:80 --name web busybox:1.36 httpd -p 80", "docker run -p 127.0.0.1:80:80 --name web 127.0.0.1:5000/library/busybox httpd -p 80"),
        ("docker run --publish=5000 hello-world", "docker run --publish=127.0.0.1::5000 127.0.0.1:5000/library/hello"),
        ("mkdir -p /root/app && docker pull busybox", "mkdir -p $HOME/app && docker pull 127.0.0.1:5000/library/busybox"),
        ("docker run -p 127.0.0.1::80 127.0.0.1:5000/library/web", "docker run -p 127.0.0.1::80 127.0.0.1:5000/library/web"),
        ("FROM busybox:latest", "FROM 127.0.0.1:5000/library/busybox"),
    ],
)
def test_docker_commands_are_rewritten_for_the_gateway(command, expected):
    assert rewrite_script(command, DOCKER)[0] == expected


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("kubectl get pods -n demo", "kubectl get pods"),
        ("kubectl --namespace=demo logs web | head -n 1", "kubectl logs web | head -n 1"),
        ("kubectl create deployment web --image=busybox", "kubectl create deployment web --image=$REGISTRY/library/busybox"),
        ("    namespace: demo", None),
    ],
)
def test_kubernetes_commands_lose_their_namespace(command, expected):
    rewritten, _ = rewrite_script(command, KUBERNETES)
    assert rewritten == ("" if expected is None else expected)


@pytest.mark.parametrize(
    "command",
    ["sudo ls", "apt-get install -y jq", "ssh node01", "kubectl get nodes", "kubectl create clusterrolebinding x", "systemctl restart kubelet",
     "curl -sL https://example.com/install.sh", "docker run -v /etc:/host busybox", "docker run --privileged busybox", "echo x > /etc/motd",
     "kubectl run web --image=busybox", "kubectl get pods --all-namespaces", "mount -t tmpfs none /mnt"],
)
def test_what_cannot_run_here_is_named(command):
    env = KUBERNETES if "kubectl" in command else DOCKER
    _, findings = rewrite_script(command, env)
    assert any(f.kind == "cannot-run" for f in findings), findings


@pytest.mark.parametrize(
    "command",
    ["mount=$(kubectl get pod app -o jsonpath='{.spec.volumes}')", "echo 'the kubelet restarts it'", "timeout 5 wget -qO- http://web.$ns.svc:8080",
     "kubectl config view --minify -o jsonpath='{..namespace}'", "cat <<EOF > Dockerfile\nRUN apt-get install -y x\nEOF",
     "kubectl describe pod plain | grep -A 6 Limits"],
)
def test_what_can_run_is_not_named(command):
    env = KUBERNETES if "kubectl" in command or "svc" in command else DOCKER
    _, findings = rewrite_script(command, env)
    assert [f for f in findings if f.kind == "cannot-run"] == []


@pytest.mark.parametrize(
    ("command", "tools"),
    [
        ("curl -sS http://127.0.0.1:5000/v2/_catalog | jq -r '.repositories[]'", ["curl", "jq"]),
        ("while ! curl -sf http://web:8080/; do sleep 1; done", ["curl"]),
        ("status=$(timeout 5 curl -s -o /dev/null -w '%{http_code}' localhost:8080)", ["curl"]),
        ("echo curl is handy", []),
        ("docker exec web curl -s localhost", []),  # runs in the container, whose image decides
        ("kubectl exec web -- curl -s localhost", []),
    ],
)
def test_curl_and_jq_are_mapped_as_in_the_lesson_images(command, tools):
    env = KUBERNETES if "kubectl" in command else DOCKER
    rewritten, findings = rewrite_script(command, env)
    assert rewritten == command
    assert [f.reason.split()[0] for f in findings if f.kind == "mapped"] == tools
    assert [f for f in findings if f.kind == "cannot-run"] == []


def test_curl_of_the_internet_is_named_as_unrunnable_and_not_as_available():
    _, findings = rewrite_script("curl -fsSL https://get.docker.com | sh", DOCKER)
    assert [f.kind for f in findings] == ["cannot-run"]


def test_the_fixtures_curl_and_jq_are_reported_as_mapped(docker_lesson):
    report = _report(docker_lesson)
    assert _has(report, "step3/verify.sh", "mapped", "curl runs as it is: Debian's curl is in the lesson images", 3)
    assert _has(report, "step3/verify.sh", "mapped", "jq runs as it is", 3)
    assert _has(report, "step2/verify.sh", "mapped", "jq runs as it is", 3)
    assert not _has(report, "step3/text.md", "mapped", "curl runs as it is")


def test_workloads_get_the_restricted_security_context_and_cluster_objects_are_named():
    manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: x}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: web, image: nginx}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"
    rewritten, findings = rewrite_manifests(manifest, KUBERNETES)
    deployment, namespace = yaml.safe_load_all(rewritten)
    spec = deployment["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "namespace" not in deployment["metadata"]
    assert any(f.kind == "reported" and "image nginx is not in the classroom registry" in f.reason for f in findings)
    assert any(f.kind == "cannot-run" and "Namespace is cluster-scoped" in f.reason for f in findings)


def test_a_manifest_that_is_already_restricted_is_left_as_written():
    manifest = (FIXTURES.parents[3] / "lessons/content/pods/steps/01-a-pod-manifest.md").read_text().split("cat > ~/web.yaml <<EOF\n")[1].split("\nEOF")[0]
    assert rewrite_manifests(manifest, KUBERNETES)[0] == manifest


# --- The command ---------------------------------------------------------------------------------


def test_the_command_imports_validates_and_names_the_report(tmp_path):
    out = io.StringIO()
    call_command("import_scenario", str(FIXTURES / "killercoda-docker"), "--into", str(tmp_path / "lessons"), stdout=out)
    assert f"{tmp_path / 'lessons' / 'killercoda-docker' / REPORT_NAME}" in out.getvalue()
    assert "1 cannot-run" in out.getvalue()
    with pytest.raises(CommandError, match="exists"):
        call_command("import_scenario", str(FIXTURES / "killercoda-docker"), "--into", str(tmp_path / "lessons"), stdout=io.StringIO())
    call_command("import_scenario", str(FIXTURES / "killercoda-docker"), "--into", str(tmp_path / "lessons"), "--replace", stdout=io.StringIO())


def test_the_command_refuses_what_is_not_a_scenario(tmp_path):
    with pytest.raises(CommandError, match="no index.json"):
        (tmp_path / "source" / "a").mkdir(parents=True)
        (tmp_path / "source" / "b").mkdir()
        call_command("import_scenario", str(tmp_path / "source"), "--into", str(tmp_path / "out"), stdout=io.StringIO())


# --- Markdown annotations, one by one ------------------------------------------------------------


def _convert(text: str, workspace: str = "plain"):
    from lessons.scenarios.markdown import convert

    return convert(text, Environment(workspace))


def test_exec_arguments_are_run_blocks_and_reported():
    converted = _convert("```\ntop\n```{{exec interrupt}}\n\n`^C`{{execute ctrl-seq}}\n")
    assert converted.body.startswith("```run\ntop\n```")
    reasons = [f.reason for f in converted.findings if f.kind == "reported"]
    assert any("no Ctrl-C is sent" in r for r in reasons) and any("ctrl-seq" in r for r in reasons)


def test_other_details_and_raw_pre_blocks_are_shown_as_text():
    converted = _convert("<details><summary>Background reading</summary>\n\nWhy it works.\n\n</details>\n\n<pre>`a`{{execute}}</pre>\n")
    assert "**Background reading**\n\nWhy it works." in converted.body
    assert "```\n`a`{{execute}}\n```" in converted.body  # shown as written, not run
    assert not converted.hints and not converted.solution
    assert any(f.kind == "reported" and "neither hint nor solution" in f.reason for f in converted.findings)


def test_a_solution_without_code_becomes_the_last_hint(tmp_path):
    converted = _convert("Do it.\n\n<details><summary>Solution</summary>\n\nJust edit the file by hand.\n\n</details>\n")
    assert converted.solution == [] and converted.solution_texts == ["Just edit the file by hand."]


@pytest.mark.parametrize(("target", "expected"), [("replace", "new\n"), ("append", "old\nnew\n"), ("prepend", "new\nold\n")])
def test_editor_blocks_write_replace_append_and_prepend(target, expected, tmp_path):
    converted = _convert(f'<pre class="file" data-filename="notes.txt" data-target="{target}">new</pre>\n')
    (tmp_path / "notes.txt").write_text("old\n")
    assert _sh("\n".join(converted.setup), tmp_path).returncode == 0
    assert (tmp_path / "notes.txt").read_text() == expected
    assert "`~/notes.txt` (written for you when the step starts; open it from the **Editor** tab)" in converted.body


def test_an_editor_block_at_a_marker_is_written_whole_and_reported(tmp_path):
    converted = _convert('<pre class="file" data-filename="a.js" data-target="insert" data-marker="#TODO">x()</pre>\n')
    assert _sh("\n".join(converted.setup), tmp_path).returncode == 0 and (tmp_path / "a.js").read_text() == "x()\n"
    assert any("at a marker" in f.reason for f in converted.findings)


def test_katacoda_placeholders_and_other_html_are_reported():
    converted = _convert("Your IP is [[HOST_IP]].\n\n<div>boxed</div>\n")
    reasons = [f.reason for f in converted.findings if f.kind == "reported"]
    assert any("[[HOST_IP]] is a Katacoda placeholder" in r for r in reasons)
    assert any("raw HTML <div>" in r for r in reasons)


def test_a_port_link_in_a_plain_lesson_names_the_port_and_is_reported(tmp_path):
    scenario = tmp_path / "plain-web"
    scenario.mkdir()
    (scenario / "index.json").write_text('{"title": "Plain web", "details": {"steps": [{"title": "Look", "text": "step1.md"}]},\n'
                                         ' "backend": {"imageid": "ubuntu"}}\n')
    (scenario / "step1.md").write_text("Start `busybox httpd -p 8080`{{exec}}\n\n[See it]({{TRAFFIC_HOST1_8080}})\n")
    [result] = import_path(scenario, tmp_path / "lessons")
    _, body = _front(result.folder / "steps" / "01-look.md")
    assert "See it (port 8080 in the sandbox)" in body and "Web preview" not in body
    assert _has(_report(result.folder), "step1.md", "reported", "web preview link to port 8080: a plain sandbox has no web preview", 3)


def test_a_check_for_a_file_the_learner_cannot_make_marks_the_step(tmp_path):
    scenario = tmp_path / "verification"
    scenario.mkdir()
    (scenario / "index.json").write_text('{"title": "Verification", "description": "Verify user input",\n'
                                         ' "details": {"steps": [{"title": "Please create a file", "text": "create_file.md", "verify": "verify.sh"}]},\n'
                                         ' "backend": {"imageid": "ubuntu"}}\n')
    (scenario / "create_file.md").write_text("\nCreate file `/etc/panda`\n")
    (scenario / "verify.sh").write_text("#!/bin/bash\n\nstat /etc/panda\n")
    [result] = import_path(scenario, tmp_path / "lessons")
    assert _has(_report(result.folder), "verify.sh", "cannot-run", "the check looks for /etc/panda", 3)
    _, body = _front(result.folder / "steps" / "01-please-create-a-file.md")
    assert body.startswith("> **Imported:**") and "only the home and /tmp are writable" in body


def test_bash_scripts_run_with_bash_and_are_no_longer_reported_as_unrunnable(docker_lesson, tmp_path):
    report = _report(docker_lesson)
    assert _has(report, "step2/verify.sh", "mapped", "runs with bash (/bin/bash in the lesson images)", 1)
    assert _has(report, "step1/background.sh", "mapped", "runs with bash", 1)
    assert not any("busybox ash" in m["reason"] for m in report)
    meta, _ = _front(docker_lesson / "steps" / "01-leave-a-note.md")
    # A bash-only check, run by sh as every check is: bash gets the script, and its exit code counts.
    check = run_with_bash('declare -A seen=([note]=hello)\n[[ $(cat "$HOME/note.txt") == "${seen[note]}" ]]\n')
    assert "bash -c" in meta["check"]
    assert _sh(check, tmp_path).returncode != 0
    (tmp_path / "note.txt").write_text("hello\n")
    assert _sh(check, tmp_path).returncode == 0


def test_a_script_holding_the_delimiter_still_runs_whole(tmp_path):
    script = run_with_bash(f"echo {BASH_DELIMITER}\necho after\n")
    assert _sh(script, tmp_path).stdout == f"{BASH_DELIMITER}\nafter\n"
