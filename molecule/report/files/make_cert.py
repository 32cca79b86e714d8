"""Write a certificate from a throwaway test CA (tests/fixtures/pki.py) that expires in 5 days: make_cert.py OUT.pem."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tests"))

from fixtures.pki import PKI  # noqa: E402

out = pathlib.Path(sys.argv[1])
pki = PKI(out.parent)
cert, _key = pki.leaf(pki.root(), "shop.example.test", start=-85, lifetime=90)
pki.pem(out.name, cert)
