"""Build hook: the built package records the git commit it was built from.

A wheel or a non-editable install has no repository to ask, so `build_py` writes the
commit into `storage/_git_commit.txt` of the build (never of the source tree), where
`storage.mlflow_store.git_commit` reads it. Everything else is in pyproject.toml.
"""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithCommit(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the repository itself
            return
        sys.path.insert(0, str(HERE))
        from storage.mlflow_store import BUILD_COMMIT_FILE, repository_commit

        target = Path(self.build_lib) / "storage" / BUILD_COMMIT_FILE.name
        target.write_text(repository_commit(HERE) + "\n")


setup(cmdclass={"build_py": BuildPyWithCommit})
