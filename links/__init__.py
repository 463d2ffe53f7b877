"""Link implementations. Each registers through the ``semsim.links`` entry-point group in ``pyproject.toml``."""
