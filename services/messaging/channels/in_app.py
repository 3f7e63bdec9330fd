"""The in-app adapter: the message becomes an item of the user's feed (written once per
delivery, so a repeated attempt adds nothing)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.channels.base import SendResult
from services.messaging.deliveries.message import Message
from services.messaging.feed import repository as feed
from shared.clock import Clock


class InAppChannel:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    async def send(self, message: Message) -> SendResult:
        user_id = message.target.get("user_id")
        if not user_id:
            return SendResult.permanent("the target has no user_id")
        async with self.sessions() as session:
            await feed.add_item(
                session,
                delivery_id=message.delivery_id,
                workspace_id=message.workspace_id,
                user_id=user_id,
                subject=message.subject,
                body=message.body,
                category=message.category,
                created_at=self.clock.now(),
            )
            await session.commit()
        return SendResult.sent(message.delivery_id)
