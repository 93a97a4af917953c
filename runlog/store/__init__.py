"""(package docstring written in the next commit)"""
