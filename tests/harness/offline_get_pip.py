"""Stand-in for the pip bootstrap script ansible-test downloads from ci-files.testing.ansible.com.

That host is not reachable from the build machines, so sanity.sh puts this file where
ansible-test caches the script (~/.ansible/test/cache/get_pip_<version>.py) next to the pip
wheel of that version, downloaded from PyPI. ansible-test runs it as a module with pip's
install arguments; it installs pip into the empty sanity virtualenv from that wheel.
"""

import glob
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
version = os.path.splitext(os.path.basename(__file__))[0].removeprefix("get_pip_").replace("_", ".")
wheels = glob.glob(os.path.join(here, f"pip-{version}-*.whl"))
if not wheels:
    sys.exit(f"no pip {version} wheel in {here}: run tests/harness/sanity.sh to fetch it")

# get-pip.py's own flags: setuptools and wheel are not installed unless asked for.
arguments = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.path.insert(0, wheels[0])
from pip._internal.cli.main import main  # noqa: E402  (importable only from the wheel)

sys.exit(main(["install", "--no-index", "--find-links", here, "--upgrade", *arguments]))
