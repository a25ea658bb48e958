"""Sentences for training and evaluating the lip-sync network, made from our own word lists.

Seeded and reproducible. Training and held-out sentences come from disjoint object lists, so
no held-out sentence can repeat a training one.
"""

from __future__ import annotations

import random

SUBJECTS = [
    "the student", "my teacher", "a scientist", "the little robot", "our class", "a farmer",
    "my brother", "the doctor", "every plant", "the pilot", "grandma", "the team", "a penguin",
    "the baker", "my friend Sophie", "the old fisherman", "a curious child", "the museum guide",
]  # fmt: skip
VERBS = [
    ("measures", "measure"), ("draws", "draw"), ("explains", "explain"), ("finds", "find"),
    ("watches", "watch"), ("builds", "build"), ("counts", "count"), ("mixes", "mix"),
    ("pushes", "push"), ("follows", "follow"), ("solves", "solve"), ("describes", "describe"),
    ("photographs", "photograph"), ("weighs", "weigh"), ("shares", "share"), ("fixes", "fix"),
]  # fmt: skip
OBJECTS_TRAIN = [
    "the purple triangle", "seven red apples", "a heavy metal ball", "the shadow of the moon",
    "fresh water", "a tiny seed", "the quiet forest", "thirty blue marbles", "a broken clock",
    "the longest river", "a jar of honey", "the chemistry puzzle", "four yellow buttons",
    "the map of Europe", "a very sharp pencil", "the noisy engine", "a cloud of steam",
    "the fraction one half", "a wooden bridge", "the ocean waves", "a bowl of soup",
    "the magnetic field", "twelve paper boats", "the thunderstorm", "a shiny coin",
]  # fmt: skip
OBJECTS_HELD_OUT = [
    "the orange pumpkin", "nine green frogs", "a cup of cocoa", "the volcano model",
    "the square root of sixty four", "a feather and a rock", "the shooting star",
    "five chocolate cookies", "the frozen lake", "a paper airplane",
]  # fmt: skip
PLACES = [
    "before lunch", "in the laboratory", "with great care", "under the bright sun",
    "every Thursday morning", "near the old bridge", "because it is fun", "after the storm",
    "at the top of the hill", "without any help", "during the holidays", "on the kitchen table",
]  # fmt: skip
SHORT = [
    "Yes.", "No, thank you.", "Okay!", "Hmm, let me think.", "Great job!", "Try again.",
    "Wow, that is amazing!", "Really?", "I see.", "Good morning, everyone.", "Well done!",
    "Oh no!", "Maybe tomorrow.", "Absolutely.", "Excellent question.",
]  # fmt: skip


def _sentence(rng: random.Random, objects: list[str]) -> str:
    subject = rng.choice(SUBJECTS)
    verb, base = rng.choice(VERBS)
    obj, place = rng.choice(objects), rng.choice(PLACES)
    form = rng.randrange(6)
    if form == 0:
        return f"Why does {subject} {base} {obj} {place}?"
    if form == 1:
        return f"What happens when {subject} {verb} {obj}?"
    if form == 2:
        return f"{rng.choice(SHORT)} {subject.capitalize()} {verb} {obj}."
    if form == 3:
        first, second = rng.sample(objects, 2)
        return f"{subject.capitalize()} {verb} {first}, and then {second} {place}."
    return f"{subject.capitalize()} {verb} {obj} {place}."


def sentences(count: int, seed: int, held_out: bool = False) -> list[str]:
    rng = random.Random(seed)
    objects = OBJECTS_HELD_OUT if held_out else OBJECTS_TRAIN
    return [_sentence(rng, objects) for _ in range(count)]


ZH_SUBJECTS = [
    "小明",
    "我的老师",
    "这位科学家",
    "我们班",
    "一位农民",
    "我的哥哥",
    "那只小猫",
    "医生",
    "同学们",
    "奶奶",
]
ZH_VERBS = [
    "仔细观察",
    "认真测量",
    "画出",
    "找到",
    "解释",
    "数一数",
    "带来",
    "搬走",
    "描述",
    "分享",
]
ZH_OBJECTS_TRAIN = [
    "紫色的三角形", "七个红苹果", "一个很重的铁球", "月亮的影子", "一杯清水", "一颗小种子",
    "安静的森林", "三十颗蓝色弹珠", "一座木桥", "海边的贝壳", "一碗热汤", "十二只纸船",
]  # fmt: skip
ZH_OBJECTS_HELD_OUT = ["橙色的南瓜", "九只绿青蛙", "一杯热可可", "火山模型", "一只纸飞机"]
ZH_PLACES = [
    "在午饭以前",
    "在实验室里",
    "在阳光下",
    "每个星期四",
    "在老桥旁边",
    "在山顶上",
    "在假期里",
]
ZH_SHORT = ["好的。", "谢谢你！", "太棒了！", "再试一次。", "让我想一想。", "真的吗？", "早上好！"]


def sentences_zh(count: int, seed: int, held_out: bool = False) -> list[str]:
    rng = random.Random(seed)
    objects = ZH_OBJECTS_HELD_OUT if held_out else ZH_OBJECTS_TRAIN
    out = []
    for _ in range(count):
        subject, verb = rng.choice(ZH_SUBJECTS), rng.choice(ZH_VERBS)
        obj, place = rng.choice(objects), rng.choice(ZH_PLACES)
        form = rng.randrange(4)
        if form == 0:
            out.append(f"为什么{subject}要{place}{verb}{obj}？")
        elif form == 1:
            out.append(f"{rng.choice(ZH_SHORT)}{subject}{place}{verb}了{obj}。")
        else:
            out.append(f"{subject}{place}{verb}{obj}。")
    return out
