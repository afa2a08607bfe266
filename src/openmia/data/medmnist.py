"""The MedMNIST v2 / MedMNIST+ fact table — the one place these facts live.

Transcribed from the official ``medmnist/info.py`` (medmnist 3.0.2, Zenodo record 10519652, which
re-hosts the v2 28-px files unchanged and adds the 64/128/224 px variants; 3D sets have 28 and 64).
Per set: task type, channels, dims, official split sizes (train, val, test), licence, class names
and the official MD5 of each size variant. Changing a value here changes what ``openmia data fetch``
accepts, so every value is checked by a test against the files at hand where they exist.
"""

from __future__ import annotations

from typing import NamedTuple

ZENODO_RECORD = "https://zenodo.org/records/10519652/files"
CITATION = (
    "Jiancheng Yang, Rui Shi, Donglai Wei, Zequan Liu, Lin Zhao, Bilian Ke, Hanspeter Pfister, Bingbing Ni. "
    "MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical image classification. "
    "Scientific Data 10, 41 (2023). https://doi.org/10.1038/s41597-022-01721-8 "
    "— please also cite the source data of the subset you use (see https://medmnist.com/)."
)


class _F(NamedTuple):
    task_type: str
    channels: int
    dims: int
    splits: tuple[int, int, int]  # train, val, test
    licence: str
    labels: tuple[str, ...]
    md5: dict[int, str]  # size -> official MD5


FACTS: dict[str, _F] = {
    "pathmnist": _F("multi-class", 3, 2, (89996, 10004, 7180), "CC BY 4.0",
           ('adipose', 'background', 'debris', 'lymphocytes', 'mucus', 'smooth muscle', 'normal colon mucosa', 'cancer-associated stroma', 'colorectal adenocarcinoma epithelium'),
           {28: 'a8b06965200029087d5bd730944a56c1', 64: '55aa9c1e0525abe5a6b9d8343a507616', 128: 'ac42d08fb904d92c244187169d1fd1d9', 224: '2c51a510bcdc9cf8ddb2af93af1eadec'}),
    "chestmnist": _F("multi-label", 1, 2, (78468, 11219, 22433), "CC BY 4.0",
           ('atelectasis', 'cardiomegaly', 'effusion', 'infiltration', 'mass', 'nodule', 'pneumonia', 'pneumothorax', 'consolidation', 'edema', 'emphysema', 'fibrosis', 'pleural', 'hernia'),
           {28: '02c8a6516a18b556561a56cbdd36c4a8', 64: '9de6cd0b934ebb5b7426cfba5efbae16', 128: 'db107e5590b27930b62dbaf558aebee3', 224: '45bd33e6f06c3e8cdb481c74a89152aa'}),
    "dermamnist": _F("multi-class", 3, 2, (7007, 1003, 2005), "CC BY-NC 4.0",
           ('actinic keratoses and intraepithelial carcinoma', 'basal cell carcinoma', 'benign keratosis-like lesions', 'dermatofibroma', 'melanoma', 'melanocytic nevi', 'vascular lesions'),
           {28: '0744692d530f8e62ec473284d019b0c7', 64: 'b70a2f5635c6199aeaa28c31d7202e1f', 128: '2defd784463fa5243564e855ed717de1', 224: '8974907d8e169bef5f5b96bc506ae45d'}),
    "octmnist": _F("multi-class", 1, 2, (97477, 10832, 1000), "CC BY 4.0",
           ('choroidal neovascularization', 'diabetic macular edema', 'drusen', 'normal'),
           {28: 'c68d92d5b585d8d81f7112f81e2d0842', 64: 'e229e9440236b774d9f0dfef9d07bdaf', 128: '0a97e76651ace45c5d943ee3f65b63ae', 224: 'abc493b6d529d5de7569faaef2773ba3'}),
    "pneumoniamnist": _F("binary", 1, 2, (4708, 524, 624), "CC BY 4.0",
           ('normal', 'pneumonia'),
           {28: '28209eda62fecd6e6a2d98b1501bb15f', 64: '8f4eceb4ccffa70c672198ea285246c6', 128: '05b46931834c231683c68f40c47b2971', 224: 'd6a3c71de1b945ea11211b03746c1fe1'}),
    "retinamnist": _F("ordinal", 3, 2, (1080, 120, 400), "CC BY 4.0",
           ('0', '1', '2', '3', '4'),
           {28: 'bd4c0672f1bba3e3a89f0e4e876791e4', 64: 'afda852cc34dcda56f86ad2b2457dbcc', 128: 'e48e916a24454daf90583d4e6efb1a18', 224: 'eae7e3b6f3fcbda4ae613ebdcbe35348'}),
    "breastmnist": _F("binary", 1, 2, (546, 78, 156), "CC BY 4.0",
           ('malignant', 'normal, benign'),
           {28: '750601b1f35ba3300ea97c75c52ff8f6', 64: '742edef2a1fd1524b2efff4bd7ba9364', 128: '363e4b3f8d712e9b5de15470a2aaadf1', 224: 'b56378a6eefa9fed602bb16d192d4c8b'}),
    "bloodmnist": _F("multi-class", 3, 2, (11959, 1712, 3421), "CC BY 4.0",
           ('basophil', 'eosinophil', 'erythroblast', 'immature granulocytes(myelocytes, metamyelocytes and promyelocytes)', 'lymphocyte', 'monocyte', 'neutrophil', 'platelet'),
           {28: '7053d0359d879ad8a5505303e11de1dc', 64: '2b94928a2ae4916078ca51e05b6b800b', 128: 'adace1e0ed228fccda1f39692059dd4c', 224: 'b718ff6835fcbdb22ba9eacccd7b2601'}),
    "tissuemnist": _F("multi-class", 1, 2, (165466, 23640, 47280), "CC BY 4.0",
           ('Collecting Duct, Connecting Tubule', 'Distal Convoluted Tubule', 'Glomerular endothelial cells', 'Interstitial endothelial cells', 'Leukocytes', 'Podocytes', 'Proximal Tubule Segments', 'Thick Ascending Limb'),
           {28: 'ebe78ee8b05294063de985d821c1c34b', 64: '123ece2eba09d0aa5d698fda57103344', 128: '61b955355d7425a89687b06cca3ce0c2', 224: 'b077128c4a949f0a4eb01517f9037b9c'}),
    "organamnist": _F("multi-class", 1, 2, (34561, 6491, 17778), "CC BY 4.0",
           ('bladder', 'femur-left', 'femur-right', 'heart', 'kidney-left', 'kidney-right', 'liver', 'lung-left', 'lung-right', 'pancreas', 'spleen'),
           {28: '68e3f8846a6bd62f0c9bf841c0d9eacc', 64: '2dcccc29b88e6da5a01161ef20cda288', 128: 'eeae80d0a227a8d099027e1b3cfd3b60', 224: '50747347e05c87dd3aaf92c49f9f3170'}),
    "organcmnist": _F("multi-class", 1, 2, (12975, 2392, 8216), "CC BY 4.0",
           ('bladder', 'femur-left', 'femur-right', 'heart', 'kidney-left', 'kidney-right', 'liver', 'lung-left', 'lung-right', 'pancreas', 'spleen'),
           {28: 'b9ceb9546e10131b32923c5bbeaea2b1', 64: '3ce34a8724ea6f548e6db4744d03b6a9', 128: '773c1f009daa3fe5d9a2a201b2a7ed94', 224: '050f5e875dc056f6768abf94ec9995d1'}),
    "organsmnist": _F("multi-class", 1, 2, (13932, 2452, 8827), "CC BY 4.0",
           ('bladder', 'femur-left', 'femur-right', 'heart', 'kidney-left', 'kidney-right', 'liver', 'lung-left', 'lung-right', 'pancreas', 'spleen'),
           {28: '9ab87b696fb54e2a387ebe992d6ed5f1', 64: '53a6d115339d874c25e309a994ff46d3', 128: 'ded0c5fa01a95dc4978b956f613e9b8e', 224: 'b354719e553fbbb2513d5533f52a4cb1'}),
    "organmnist3d": _F("multi-class", 1, 3, (971, 161, 610), "CC BY 4.0",
           ('liver', 'kidney-right', 'kidney-left', 'femur-right', 'femur-left', 'bladder', 'heart', 'lung-right', 'lung-left', 'spleen', 'pancreas'),
           {28: 'a0c5a1ff56af4f155c46d46fbb45a2fe', 64: '58a2205adf14a9d0a189cb06dc78bf10'}),
    "nodulemnist3d": _F("binary", 1, 3, (1158, 165, 310), "CC BY 4.0",
           ('benign', 'malignant'),
           {28: '8755a7e9e05a4d9ce80a24c3e7a256f3', 64: 'c47c5b7d457bf6332200d2ea6d64ecd8'}),
    "adrenalmnist3d": _F("binary", 1, 3, (1188, 98, 298), "CC BY 4.0",
           ('normal', 'hyperplasia'),
           {28: 'bbd3c5a5576322bc4cdfea780653b1ce', 64: '17721accfe9fb005146a47d33bc54b2f'}),
    "fracturemnist3d": _F("multi-class", 1, 3, (1027, 103, 240), "CC BY 4.0",
           ('buckle rib fracture', 'nondisplaced rib fracture', 'displaced rib fracture'),
           {28: '6aa7b0143a6b42da40027a9dda61302f', 64: 'f01d7e6316aedf4210da0da5b7437b42'}),
    "vesselmnist3d": _F("binary", 1, 3, (1335, 191, 382), "CC BY 4.0",
           ('vessel', 'aneurysm'),
           {28: 'b41fd4f7e7e2feedddb201585ecafa1b', 64: '6bb274a8846e1097066dcd64e2c4520f'}),
    "synapsemnist3d": _F("binary", 1, 3, (1230, 177, 352), "CC BY 4.0",
           ('inhibitory synapse', 'excitatory synapse'),
           {28: '1235b78a3cd6280881dd7850a78eadb6', 64: '43bd14ebf3af9d3dd072446fedc14d5e'}),
}

# one-line descriptions (source data), written for `openmia data info`
SOURCES: dict[str, str] = {
    "pathmnist": "colorectal cancer histology patches (NCT-CRC-HE-100K / CRC-VAL-HE-7K), 9 tissue types",
    "chestmnist": "frontal chest X-rays (NIH ChestX-ray14), 14 findings, multi-label",
    "dermamnist": "dermatoscopic images (HAM10000), 7 diagnoses; non-commercial licence",
    "octmnist": "retinal optical coherence tomography, 4 diagnoses",
    "pneumoniamnist": "paediatric chest X-rays, pneumonia vs normal",
    "retinamnist": "retinal fundus images (DeepDRiD), 5 diabetic-retinopathy grades, ordinal",
    "breastmnist": "breast ultrasound (BUSI), malignant vs normal/benign",
    "bloodmnist": "blood cell microscopy, 8 cell types",
    "tissuemnist": "kidney cortex cells (BBBC051), 8 types",
    "organamnist": "abdominal CT (LiTS), axial views, 11 organs",
    "organcmnist": "abdominal CT (LiTS), coronal views, 11 organs",
    "organsmnist": "abdominal CT (LiTS), sagittal views, 11 organs",
    "organmnist3d": "abdominal CT (LiTS) organ volumes, 11 organs",
    "nodulemnist3d": "chest CT lung nodules (LIDC-IDRI), benign vs malignant",
    "adrenalmnist3d": "adrenal gland shape masks from abdominal CT (Zhongshan Hospital), normal vs hyperplasia",
    "fracturemnist3d": "chest CT rib fractures (RibFrac), 3 fracture types",
    "vesselmnist3d": "intracranial vessel segments from MRA (IntrA), vessel vs aneurysm",
    "synapsemnist3d": "electron microscopy synapses, excitatory vs inhibitory",
}


def url_for(name: str, size: int) -> str:
    """Official download URL of ``name`` at ``size`` px."""
    return f"{ZENODO_RECORD}/{filename_for(name, size)}?download=1"


def filename_for(name: str, size: int) -> str:
    """``name.npz`` for 28 px, ``name_<size>.npz`` for the larger variants (official names)."""
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"
