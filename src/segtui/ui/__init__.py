"""The Textual user interface: thin over segtui.core."""
