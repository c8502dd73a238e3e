"""The live runtime of swapcam: the pipeline and processor here; frames/, face/, swap/, merging/, marking/ beneath."""
