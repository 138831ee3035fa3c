"""lash-store as a LangGraph checkpointer (the ``langgraph`` extra).

::

    from lash_store_langgraph import LashSaver

    with LashSaver.from_url("postgresql://127.0.0.1/app") as saver:  # sync code
        graph = builder.compile(checkpointer=saver)
        graph.invoke(...)

    async with LashSaver.from_url("postgresql://127.0.0.1/app") as saver:  # async code
        graph = builder.compile(checkpointer=saver)
        await graph.ainvoke(...)

See docs/langgraph.md for what maps onto what and what is guaranteed.
"""

from __future__ import annotations

from .retry import ainvoke_once, invoke_once
from .saver import LashSaver, ThreadForked

__all__ = ["LashSaver", "ThreadForked", "ainvoke_once", "invoke_once"]
