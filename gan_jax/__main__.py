"""`python -m gan_jax train|sample|eval ...`."""

import sys

from gan_jax.main import main

if __name__ == "__main__":
    sys.exit(main())
