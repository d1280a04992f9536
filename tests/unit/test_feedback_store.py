from modelmon.feedback_store import FeedbackStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_oldest_entries_go_first_when_full():
    store = FeedbackStore(max_entries=3, ttl_seconds=100)
    for index in range(5):
        store.put(f"id{index}", float(index))
    assert len(store) == 3
    assert store.pop("id0") is None
    pending = store.pop("id4")
    assert pending is not None
    assert pending.value == 4.0


def test_entries_expire_after_the_ttl():
    clock = FakeClock()
    store = FeedbackStore(max_entries=10, ttl_seconds=60, clock=clock)
    store.put("old", 1.0)
    clock.now = 30
    store.put("young", 2.0)
    clock.now = 61
    assert store.pop("old") is None
    assert store.pop("young") is not None


def test_a_prediction_takes_feedback_once():
    store = FeedbackStore(max_entries=10, ttl_seconds=60)
    store.put("id", 1.0)
    assert store.pop("id") is not None
    assert store.pop("id") is None
