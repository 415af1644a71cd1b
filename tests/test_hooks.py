"""Hook dispatch: sync and async implementations on both paths, ordering, opt-in arguments."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pluggy
import pytest

from codat_webhooks import ConfigurationError, Delivery, Receiver, hookimpl
from codat_webhooks.hooks.manager import make_plugin_manager
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import sample_body


@pytest.fixture
def make_receiver(codat_make_receiver: Callable[..., Receiver]) -> Callable[..., Receiver]:
    """Receivers from the shared fixtures, unauthenticated: these tests are about hooks."""

    def make(*plugins: object, **kwargs: Any) -> Receiver:
        kwargs.update(authorization=None, signing_secrets=None, insecure=True)
        return codat_make_receiver(list(plugins), **kwargs)

    return make


class Mixed:
    """A sync and an async implementation, recording the thread each ran on."""

    def __init__(self) -> None:
        self.threads: dict[str, int] = {}
        self.order: list[str] = []

    @hookimpl
    def on_data_sync_completed(self, alert: Any) -> None:
        self.order.append("sync")
        self.threads["sync"] = threading.get_ident()

    @hookimpl
    async def on_alert(self, delivery: Delivery) -> None:
        await asyncio.sleep(0)
        self.order.append("async")
        self.threads["async"] = threading.get_ident()


def test_sync_handle_runs_async_implementations_to_completion(
    make_receiver: Callable[..., Receiver],
) -> None:
    plugin = Mixed()
    reply = make_receiver(plugin).handle("POST", {}, sample_body("Data sync completed"))
    assert reply.outcome == "processed"
    assert plugin.order == ["sync", "async"]


def test_handle_async_runs_sync_implementations_off_the_event_loop(
    make_receiver: Callable[..., Receiver],
) -> None:
    plugin = Mixed()
    receiver = make_receiver(plugin)

    async def main() -> tuple[Any, int]:
        reply = await receiver.handle_async("POST", {}, sample_body("Data sync completed"))
        return reply, threading.get_ident()

    reply, loop_thread = asyncio.run(main())
    assert reply.outcome == "processed"
    assert plugin.order == ["sync", "async"]
    assert plugin.threads["sync"] != loop_thread
    assert plugin.threads["async"] == loop_thread


def test_sync_handle_called_inside_a_running_loop_still_runs_async_hooks(
    make_receiver: Callable[..., Receiver],
) -> None:
    plugin = Mixed()
    receiver = make_receiver(plugin)

    async def main() -> str:
        return receiver.handle("POST", {}, sample_body("Data sync completed")).outcome

    assert asyncio.run(main()) == "processed"
    assert plugin.order == ["sync", "async"]


def test_slow_sync_hook_does_not_block_the_event_loop(
    make_receiver: Callable[..., Receiver],
) -> None:
    released = threading.Event()
    outcome: list[bool] = []

    class WaitsForTheLoop:
        @hookimpl
        def on_rate_limit_reached(self) -> None:
            # Only a coroutine on the event loop can set this; if the hook ran on the loop it
            # would wait out the whole timeout and record False.
            outcome.append(released.wait(timeout=5))

    receiver = make_receiver(WaitsForTheLoop())

    async def release_soon() -> None:
        await asyncio.sleep(0.01)
        released.set()

    async def main() -> str:
        reply, _ = await asyncio.gather(
            receiver.handle_async("POST", {}, sample_body("Rate Limit Reached")), release_soon()
        )
        return reply.outcome

    assert asyncio.run(main()) == "processed"
    assert outcome == [True]


@pytest.mark.parametrize("use_async", [False, True])
def test_async_failure_stops_the_chain_and_is_retried(
    use_async: bool, make_receiver: Callable[..., Receiver]
) -> None:
    ran: list[str] = []

    class Failing:
        @hookimpl(tryfirst=True)
        async def on_expenses_sync_failed(self) -> None:
            ran.append("failing")
            raise ValueError("boom")

        @hookimpl
        def on_alert(self) -> None:
            ran.append("on_alert")

        @hookimpl
        async def on_handler_error(self, error: Exception) -> None:
            ran.append(f"error:{error}")

    receiver = make_receiver(Failing())
    body = sample_body("Sync Failed")
    if use_async:
        reply = asyncio.run(receiver.handle_async("POST", {}, body))
    else:
        reply = receiver.handle("POST", {}, body)
    assert (reply.status, reply.outcome) == (503, "failed")
    assert ran == ["failing", "error:boom"]


def test_implementations_run_in_pluggy_order(make_receiver: Callable[..., Receiver]) -> None:
    order: list[str] = []

    class A:
        @hookimpl
        def on_alert(self) -> None:
            order.append("A")

    class B:
        @hookimpl
        def on_alert(self) -> None:
            order.append("B")

    class Last:
        @hookimpl(trylast=True)
        def on_alert(self) -> None:
            order.append("last")

    class First:
        @hookimpl(tryfirst=True)
        def on_alert(self) -> None:
            order.append("first")

    make_receiver(Last(), A(), First(), B()).handle("POST", {}, sample_body("Sync Started"))
    assert order == ["first", "B", "A", "last"]


def test_plugins_registered_or_removed_between_deliveries_are_seen(
    make_receiver: Callable[..., Receiver],
) -> None:
    # The dispatcher caches each hook's implementations; the cache must follow the manager.
    order: list[str] = []

    class Early:
        @hookimpl
        def on_alert(self) -> None:
            order.append("early")

    class Late:
        @hookimpl
        def on_alert(self) -> None:
            order.append("late")

    early = Early()
    receiver = make_receiver(early)
    receiver.handle("POST", {}, sample_body("Sync Started"))
    receiver.plugin_manager.register(Late())
    receiver.handle("POST", {}, sample_body("Sync Started"))
    receiver.plugin_manager.unregister(early)
    receiver.handle("POST", {}, sample_body("Sync Started"))
    assert order == ["early", "late", "early", "late"]


def test_implementations_may_take_any_subset_of_arguments(
    make_receiver: Callable[..., Receiver],
) -> None:
    got: list[tuple[Any, ...]] = []

    class Subsets:
        @hookimpl
        def on_account_categories_updated(self) -> None:
            got.append(())

        @hookimpl
        def on_alert(self, delivery: Delivery, alert: Any) -> None:
            got.append((delivery.key, alert.rule_type))

    reply = make_receiver(Subsets()).handle("POST", {}, sample_body("Account Categories Updated"))
    assert got == [(), (reply.key, "Account Categories Updated")]


def test_errors_in_informational_hooks_are_logged_not_raised(
    caplog: pytest.LogCaptureFixture, make_receiver: Callable[..., Receiver]
) -> None:
    class Noisy:
        @hookimpl
        def on_duplicate(self) -> None:
            raise RuntimeError("metrics backend down")

    receiver = make_receiver(Noisy())
    body = sample_body("Sync Started")
    receiver.handle("POST", {}, body)
    reply = receiver.handle("POST", {}, body)
    assert (reply.status, reply.outcome) == (200, "duplicate")
    assert "on_duplicate hook raised" in caplog.text


def test_a_misspelt_hook_is_a_configuration_error(make_receiver: Callable[..., Receiver]) -> None:
    class Typo:
        @hookimpl
        def on_data_conection_status_changed(self) -> None:  # pragma: no cover
            pass

    with pytest.raises(ConfigurationError, match="unknown hook"):
        make_receiver(Typo())


def test_hook_wrappers_are_refused(make_receiver: Callable[..., Receiver]) -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def on_alert(self) -> Any:  # pragma: no cover
            return (yield)

    with pytest.raises(ConfigurationError, match="wrappers"):
        make_receiver(Wrapper())


def test_manager_has_specs_and_builtins_and_no_entry_points_when_disabled() -> None:
    manager = make_plugin_manager(load_entrypoints=False)
    assert isinstance(manager, pluggy.PluginManager)
    assert manager.has_plugin("codat_webhooks.log")
    assert manager.hook.on_alert.spec is not None
    assert manager.list_plugin_distinfo() == []


def test_builtin_log_plugin_reports_rejections(caplog: pytest.LogCaptureFixture) -> None:
    receiver = Receiver(authorization="x", store=MemoryStore(), load_entrypoints=False)
    receiver.handle("POST", {"Authorization": "y"}, sample_body("Sync Started"))
    assert "Authorization header matches no configured value" in caplog.text
    assert "Authorization: y" not in caplog.text


def test_nonblocking_sync_implementations_run_on_the_loop_without_a_thread_hop(
    make_receiver: Callable[..., Receiver],
) -> None:
    from codat_webhooks.hooks import nonblocking

    threads: dict[str, int] = {}

    class Cheap:
        @hookimpl
        @nonblocking
        def on_alert(self) -> None:
            threads["nonblocking"] = threading.get_ident()

    class Plain:
        @hookimpl
        def on_alert(self) -> None:
            threads["plain"] = threading.get_ident()

    receiver = make_receiver(Cheap(), Plain())

    async def main() -> int:
        await receiver.handle_async("POST", {}, sample_body("Sync Started"))
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads["nonblocking"] == loop_thread
    assert threads["plain"] != loop_thread


def test_hookspecs_is_the_public_module_of_every_hook() -> None:
    import codat_webhooks
    import codat_webhooks.hookspecs as hookspecs

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    every = set().union(*(hookspecs.spec_names(m) for m in hookspecs.SPEC_MODULES))
    assert {"on_alert", "on_event", "on_handler_error", "on_data_sync_completed"} <= every
    assert {name for name in vars(manager.hook) if name.startswith("on_")} == every
    assert hookspecs.on_event is hookspecs.SPEC_MODULES[1].on_event
    assert every <= set(dir(hookspecs))
    assert codat_webhooks.hookimpl is hookspecs.hookimpl
    with pytest.raises(AttributeError):
        _ = hookspecs.on_no_such_hook
