"""Graphs graphrelay serves, and how they are found."""
