"""The labels on every engine object a sandbox owns: cleanup and reconciliation after a restart read
them, so they need no database. The gateway stamps the same names on what a learner creates."""

LABEL_SANDBOX = "tutorial.sandbox"
LABEL_OWNER = "tutorial.owner"
LABEL_LESSON = "tutorial.lesson"
LABEL_WORKSPACE = "tutorial.workspace"
# The sandbox's own console container is "console"; objects a learner makes inside carry the same
# sandbox label with another role (e.g. "learner"), so reconciliation can tell them apart.
LABEL_ROLE = "tutorial.role"
ROLE_CONSOLE = "console"
# Which install (site, database) made the object: TUTORIAL_INSTALL_ID.
LABEL_INSTALL = "tutorial.install"
