"""Figures F1-F7 of docs/theory.md, drawn from result datasets."""

from .figures import *  # noqa: F401,F403
from .figures import MAJORITY as MAJORITY, MINORITY as MINORITY, save as save
