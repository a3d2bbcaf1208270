"""The expression language: plain and LaTeX text parsed safely into a typed, shaped AST."""
