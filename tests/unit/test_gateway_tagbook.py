"""The gateway's per-sandbox record of image names: pruned when images go, kept for retries."""

from sandbox.gateway.state import TagBook


def test_prune_drops_only_tags_whose_image_is_gone(tmp_path):
    book = TagBook(tmp_path, "s1")
    for tag in ("gone:1", "here:1", "unknown:1"):
        book.add(tag)
    answers = {"gone:1": False, "here:1": True, "unknown:1": None}  # None: the engine did not answer
    assert book.prune(answers.__getitem__) == ["gone:1"]
    assert book.tags() == {"here:1", "unknown:1"}
    other = TagBook(tmp_path, "s2")
    assert other.held_by_other("here:1") and not other.held_by_other("gone:1")


def test_prune_of_a_deleted_record_does_not_bring_it_back(tmp_path):
    book = TagBook(tmp_path, "s1")
    book.add("a:1")

    def present(tag):
        book.delete()  # the sandbox's cleanup finished while the engine was asked
        return False

    book.prune(present)
    assert not book.path.exists()


def test_an_ended_record_waits_for_its_retry_and_clears_when_the_sandbox_is_back(tmp_path):
    book = TagBook(tmp_path, "s1")
    book.add("a:1")
    book.mark_ended(["container web"], now=100.0)
    assert book.load()["ended"] == 100.0 and book.load()["failed"] == ["container web"]
    assert book.tags() == {"a:1"} and TagBook.sandbox_ids(tmp_path) == ["s1"]
    book.clear_ended()
    assert "ended" not in book.load() and "failed" not in book.load()
