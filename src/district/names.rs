//! Names for generated communities and villages.
//!
//! A few real names of each street or township come first; the rest are made
//! from syllables, the way the district's names are made (a position, a
//! family name or a thing, and a kind of settlement).

use std::collections::HashSet;

use super::rng::Rng;

/// Real community names, by street code, used first.
pub(crate) fn real_communities(code: &str) -> &'static [&'static str] {
    match code {
        "ZC" => &[
            "新建村社区",
            "北小园社区",
            "南大街社区",
            "西营前街社区",
            "白将军胡同社区",
            "中上园社区",
            "紫运西里社区",
        ],
        "XH" => &[
            "西关社区",
            "如意社区",
            "潞河社区",
            "新华西街社区",
            "北关社区",
        ],
        "BY" => &["北苑南路社区", "果园社区", "西上园社区", "天时名苑社区"],
        "YQ" => &[
            "玉桥东里社区",
            "玉桥西里社区",
            "玉桥南里社区",
            "乔庄社区",
            "柳岸方园社区",
        ],
        "LY" => &["九棵树社区", "云景里社区", "翠屏北里社区"],
        "YS" => &["榆西园社区", "馨园社区"],
        _ => &[],
    }
}

/// Real village names, by street code, used first.
pub(crate) fn real_villages(code: &str) -> &'static [&'static str] {
    match code {
        "YS" => &["西马庄村", "范庄村", "小潞邑村", "前北营村"],
        "LY" => &["大稿村", "小稿村", "孙王场村", "半壁店村"],
        "SZ" => &[
            "小堡村",
            "大兴庄村",
            "喇嘛庄村",
            "任庄村",
            "白庙村",
            "翟里村",
        ],
        "HX" => &["马头村", "军屯村", "侯黄庄村", "草厂村"],
        "ZJW" => &["张家湾村", "皇木厂村", "里二泗村", "施园村"],
        "MJQ" => &["小张湾村", "大白村", "西田阳村", "辛屯村"],
        "XJ" => &["沙古堆村", "林屯村", "儒林村", "望君疃村"],
        "TH" => &["次渠村", "北神树村", "麦庄村", "前营村"],
        "YLD" => &["德仁务村", "小务村", "西槐庄村"],
        "LC" => &["胡各庄村", "大营村", "古城村", "武窑村"],
        "YJW" => &["渠头村", "南仪阁村", "果村", "王各庄村"],
        _ => &[],
    }
}

const VILLAGE_POSITIONS: &[&str] = &[
    "大", "小", "东", "西", "南", "北", "前", "后", "上", "中", "下", "新", "老", "高",
];
const VILLAGE_CORES: &[&str] = &[
    "王", "李", "张", "刘", "马", "杨", "赵", "孙", "胡", "郭", "白", "许", "田", "徐", "侯", "石",
    "辛", "黄", "林", "沙", "柳", "枣", "桑", "杜", "邓", "陈", "董", "尹", "范", "葛", "韩", "何",
    "贾", "吕", "宋", "唐", "魏", "肖", "谢", "姚", "袁", "岳", "曹", "崔", "常", "段", "富", "龚",
    "皇", "仓", "梁", "苏",
];
const VILLAGE_KINDS: &[&str] = &[
    "庄", "营", "店", "屯", "务", "堡", "坨", "辛庄", "各庄", "家务", "家庄", "场", "园", "厂",
    "寺", "桥", "疃", "坟", "垡", "台", "甸", "窑", "口",
];

const COMMUNITY_PLACES: &[&str] = &[
    "运河",
    "通惠",
    "潞河",
    "滨河",
    "八里桥",
    "云景",
    "翠屏",
    "紫运",
    "京贸",
    "天时",
    "怡乐",
    "临河",
    "芙蓉",
    "柳岸",
    "瑞都",
    "杨庄",
    "果园",
    "新城",
    "龙旺庄",
    "复兴",
    "通运",
    "玉带河",
    "葛布店",
    "西营",
    "东营",
    "北营",
    "南关",
    "帅府",
    "新华",
    "梨花",
    "枣林",
    "荔景",
    "格兰",
    "月季",
    "土桥",
    "武夷",
    "金侨",
    "万盛",
    "永顺",
    "北苑",
    "中仓",
    "玉桥",
];
const COMMUNITY_KINDS: &[&str] = &[
    "东里", "西里", "南里", "北里", "中里", "园", "苑", "家园", "花园", "嘉园", "东路", "西路",
    "北路", "南路", "大街", "小区", "",
];

/// Names for a street's communities, in order, each unique within the street.
/// `kinds[k]` is true for an urban community (社区), false for a village (村).
pub(crate) fn names_for_street(code: &str, kinds: &[bool], rng: &mut Rng) -> Vec<String> {
    let mut used = HashSet::new();
    let mut real_communities = real_communities(code).iter();
    let mut real_villages = real_villages(code).iter();
    let mut names = Vec::with_capacity(kinds.len());
    for &urban in kinds {
        let real = if urban {
            real_communities.next()
        } else {
            real_villages.next()
        };
        let mut name = match real {
            Some(real) => (*real).to_owned(),
            None => made_up(urban, rng),
        };
        while used.contains(&name) {
            name = made_up(urban, rng);
        }
        used.insert(name.clone());
        names.push(name);
    }
    names
}

fn made_up(urban: bool, rng: &mut Rng) -> String {
    if urban {
        format!(
            "{}{}社区",
            rng.pick(COMMUNITY_PLACES),
            rng.pick(COMMUNITY_KINDS)
        )
    } else {
        let position = if rng.unit() < 0.6 {
            *rng.pick(VILLAGE_POSITIONS)
        } else {
            ""
        };
        format!(
            "{position}{}{}村",
            rng.pick(VILLAGE_CORES),
            rng.pick(VILLAGE_KINDS)
        )
    }
}
