# Type stub for a compiled kernel module (one per instruction-set level).
from typing import Any

def kernel_table() -> Any: ...
