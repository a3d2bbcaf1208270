"""The AST (bptt_check.language.ast): equality, hashing, repr and traversal without recursion."""

from __future__ import annotations

from bptt_check.language import Binary, Name, Transpose, walk
from bptt_check.language.ast import bottom_up, children, postorder
from bptt_check.model import RNN

from .conftest import M, N


def _left_sum(n: int, model: RNN = M) -> Binary:
    """h_1 + h_2 + … as the parser builds it: left-deep, n - 1 levels of +."""
    acc = N("h", 1, model)
    for k in range(2, n + 1):
        acc = Binary("+", acc, N("h", (k - 1) % model.steps + 1, model), (1, 2))
    return acc


def test_deep_trees_compare_hash_and_repr_without_recursion() -> None:
    import copy
    import pickle

    a, b = _left_sum(5_000), _left_sum(5_000)
    assert a == b and not (a != b) and hash(a) == hash(b)
    assert {a: "x"}[b] == "x"
    c = Binary("-", a.left, a.right, a.shape)
    assert a != c and c != a
    assert a != Binary("+", a.left, N("h", 2), a.shape)  # differs in the last leaf only
    assert (a == "h_1") is False
    assert repr(_left_sum(3)) == (
        "Binary(op='+', left=Binary(op='+', left=Name(ref=Ref(family='h', step=1), shape=(1, 2)), "
        "right=Name(ref=Ref(family='h', step=2), shape=(1, 2)), shape=(1, 2)), "
        "right=Name(ref=Ref(family='h', step=1), shape=(1, 2)), shape=(1, 2))"
    )
    assert repr(a).startswith("Binary(op='+', left=Binary(") and repr(a).endswith("…")
    hash(a)
    back = pickle.loads(pickle.dumps(a))  # flat: pickle would otherwise recurse once per level
    assert back == a and "_hash" not in back.__dict__  # a hash depends on the process: never pickled
    assert copy.deepcopy(a) == a and copy.copy(a) is a
    shared = Binary("+", a, a, a.shape)
    again = pickle.loads(pickle.dumps(shared))
    assert again == shared and again.left is again.right


def test_equality_of_dags_compares_each_pair_once() -> None:
    """Two DAGs whose unfolded trees have 2**80 leaves: equal, unequal, and hashed, at once."""

    def dag(leaf: Name, levels: int) -> Binary:
        e: Binary | Name = leaf
        for _ in range(levels):
            e = Binary("*", e, e, (1, 2))
        assert isinstance(e, Binary)
        return e

    x, y = dag(N("h", 1, M), 80), dag(N("h", 1, M), 80)
    assert x == y and hash(x) == hash(y)
    assert x != dag(N("h", 2, M), 80)
    assert len(postorder(x)) == 81
    assert len(repr(x)) < 30_000


def test_postorder_lists_each_distinct_node_once_children_first() -> None:
    h = N("h", 1, M)
    shared = Binary("+", h, h, (1, 2))
    top = Binary("@", Transpose(shared, (2, 1)), shared, (2, 2))
    order = postorder(top)
    assert [type(n).__name__ for n in order] == ["Name", "Binary", "Transpose", "Binary"]
    position = {id(n): i for i, n in enumerate(order)}
    assert all(position[id(k)] < position[id(n)] for n in order for k in children(n))
    assert len(list(walk(top))) == 8  # walk unfolds the tree; postorder does not


def test_bottom_up_folds_a_deep_dag_once_per_node_and_stops_where_asked() -> None:
    deep = _left_sum(5_000)  # 5 000 levels: a recursive fold would overflow the stack
    calls: list[int] = []

    def count(node, value_of) -> int:
        calls.append(id(node))
        return 1 + sum(value_of(k) for k in children(node))

    assert bottom_up(deep, children, count) == 2 * 5_000 - 1  # the tree's size
    assert len(calls) == len(set(calls)) == len(postorder(deep))
    shared = Binary("@", deep, deep, (2, 2))  # one subtree twice: folded once
    calls.clear()
    assert bottom_up(shared, children, count) == 1 + 2 * (2 * 5_000 - 1)
    assert len(calls) == len(postorder(deep)) + 1
    # stop: a node's value given outright, its children never visited
    cut = deep.left.left
    calls.clear()
    assert bottom_up(deep, children, count, stop=lambda n: 0 if n is cut else None) == 4  # deep, its left, two leaves
    assert len(calls) == 4
    memo: dict = {}
    bottom_up(deep.left, children, count, memo=memo)
    calls.clear()
    bottom_up(deep, children, count, memo=memo)  # a memo shared across roots: only the new nodes are folded
    assert calls == [id(deep.right), id(deep)]
