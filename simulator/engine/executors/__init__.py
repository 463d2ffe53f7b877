"""The built-in sweep executors, registered by name through the ``semsim.executors`` entry points:
``local`` (:mod:`.local`, this process) and ``ray`` (:mod:`.ray_executor`, tasks on a Ray cluster)."""
