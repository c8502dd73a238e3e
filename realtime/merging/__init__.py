"""Merging: the swapped face back into the frame, with colour transfer and the masks that decide what shows."""
