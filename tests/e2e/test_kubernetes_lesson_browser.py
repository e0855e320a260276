"""A learner in a real browser on a Kubernetes lesson, against this machine's local cluster: Start
gives a console with kubectl in the learner's own namespace, a run block writes the manifest, the
next step's solution makes a real pod, and Check passes."""

import pytest
from playwright.sync_api import expect

from tests.kubernetes.real_cluster import require_cluster

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.timeout(300)]


def test_a_pods_lesson_runs_on_the_real_cluster(live_site, browser_page):
    require_cluster()
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{live_site}/lessons/pods/")
    page.get_by_role("button", name="Continue as guest").click()
    page.get_by_role("button", name="Start sandbox").click()
    expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=30000)
    terminal = page.locator("#terminal .xterm-rows")
    expect(terminal).to_contain_text("$", timeout=15000)

    # The console's kubectl sees only the learner's own namespace.
    page.evaluate("document.getElementById('terminal').sendInput('kubectl config view --minify -o jsonpath={..namespace}; echo; kubectl get pods\\n')")
    expect(terminal).to_contain_text("tutorial-", timeout=20000)
    expect(terminal).to_contain_text("No resources found", timeout=20000)

    page.locator("button[data-check]").click()
    expect(page.locator("#check-result [data-outcome]")).to_have_attribute("data-outcome", "failed", timeout=30000)

    # The step's run block writes the manifest; the API server then accepts it (a server dry run).
    page.locator('.step-body pre[data-block="run"]').first.click()
    page.evaluate("document.getElementById('terminal').sendInput('echo manifest-done-$((40+2))\\n')")
    expect(terminal).to_contain_text("manifest-done-42", timeout=15000)
    page.locator("button[data-check]").click()
    expect(page.locator("#check-result [data-outcome]")).to_have_attribute("data-outcome", "passed", timeout=30000)

    # The next step: apply it, and a real pod runs on the node.
    page.locator("#next-step a[data-next]").click()
    # A new page: its console connects again before anything is typed.
    expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=30000)
    page.evaluate("document.getElementById('terminal').sendInput("
                  "'kubectl apply -f ~/web.yaml && kubectl wait --for=condition=Ready pod/web --timeout=90s && echo pod-up-$((40+2))\\n')")
    expect(terminal).to_contain_text("pod-up-42", timeout=120000)
    page.locator("button[data-check]").click()
    expect(page.locator("#check-result [data-outcome]")).to_have_attribute("data-outcome", "passed", timeout=30000)
