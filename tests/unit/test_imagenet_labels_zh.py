"""The zh-CN ImageNet label table: complete, aligned with the English index, and the fixed names."""

import pytest

from kerasserve.service.inference.labels import imagenet, imagenet_languages


def test_the_chinese_table_is_shipped_and_aligned_with_the_english_one():
    languages = imagenet_languages()
    assert "zh-CN" in languages, "imagenet_labels_zh-CN.txt must hold exactly 1000 names"
    chinese = languages["zh-CN"]
    assert len(chinese) == len(imagenet()) == 1000
    assert chinese.class_ids == imagenet().class_ids
    assert all(name.strip() == name and name for name in chinese.names)


@pytest.mark.parametrize(
    ("index", "english", "chinese"),
    [
        (3, "tiger_shark", "鼬鲨"),
        (518, "crash_helmet", "头盔"),
        (637, "mailbox", "信箱"),
        (734, "police_van", "警车"),
    ],
)
def test_names_fixed_in_issue_19(index, english, chinese):
    assert imagenet().names[index] == english
    assert imagenet_languages()["zh-CN"].names[index] == chinese
