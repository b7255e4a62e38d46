"""The policy language: source text -> frozen AST -> checks -> Policy IR, plus the formatter.

This package imports no jax, cvxpy or vllm, so `ttc check` starts instantly.
"""
